"""CNNClassifier: a convolutional network trained from scratch, as a scikit-learn estimator."""

from __future__ import annotations

from typing import Any

from torch import nn

from ._core.layers import first_conv_channels
from ._core.params import check_dict
from ._core.recipe import registry_recipe
from .classifier import ImageClassifier
from .presets import PRESET_PARAMS, preset_value
from .plugin.registry import get_registry

__all__ = ["CNNClassifier"]


class CNNClassifier(ImageClassifier):
    """Image classifier trained from scratch with a registry backbone.

    Training runs on skorch (``net_``); the estimator follows the
    scikit-learn contract, so it works in pipelines, grid searches,
    cross-validation and pickles.

    Parameters marked *preset* are chosen by ``preset`` when left at their
    default (``None``; ``"auto"`` for ``augment``); a value you set wins.

    Multi-label targets (any number of labels per image) are ``y`` as an
    ``(n_samples, n_labels)`` 0/1 indicator matrix or one collection of
    labels per image; the network then has one sigmoid per label,
    ``predict_proba`` gives each label's probability, ``predict`` the
    indicator matrix at ``threshold``, and ``multilabel_`` is True.

    Parameters
    ----------
    backbone : str or None, default=None
        Registry name of the architecture (see
        :func:`sklearn_imgcls.list_backbones`); *preset*.
    backbone_params : dict or None, default=None
        Extra keyword arguments for the backbone's builder; *preset* when
        ``backbone`` is unset too.
    preset : {"accurate", "best", "fast"}, default="accurate"
        Training recipe for the parameters left unset. ``"accurate"``: a
        BatchNorm VGG-style network (``bn_cnn`` with two blocks of 32 and 64
        channels and a 256-unit dense head), 16 epochs of one-cycle Adam at
        lr 2e-3, batch 128, random shifts of up to 7 % of the side
        (``random_crop``). ``"best"``: the same network for 48 epochs with
        random erasing as well as the shifts (about 14 minutes on 60,000
        28x28 images on 2 CPU cores). ``"fast"``:
        ``simple_cnn``, 10 one-cycle epochs at lr 2e-3, no augmentation. See
        :data:`sklearn_imgcls.presets.PRESETS` and ``benchmarks/RESULTS.md``.
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` (or ``(H, W)``) of the images flattened in each row of a
        2-D ``X``, also the size file inputs are resized to. ``None`` infers it.
    loss : str, default="cross_entropy"
        Registry name of the training loss. Multi-label ``y`` needs a loss
        declaring ``multilabel`` (``"binary_cross_entropy"``, ``"binary_focal"``);
        the default ``"cross_entropy"`` then trains with ``"binary_cross_entropy"``.
    loss_params : dict or None, default=None
        Extra keyword arguments for the loss builder.
    class_weight : None, "balanced" or dict, default=None
        Per-class loss weights (dict keys are the original labels). For
        multi-label ``y``: the weight of each label's positive images
        (``"balanced"``: negatives / positives of the label).
    optimizer : str or torch.optim.Optimizer subclass, default="adam"
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"rmsprop"`` or a class.
    optimizer_params : dict or None, default=None
        Extra optimizer arguments, e.g. ``{"weight_decay": 1e-4}``.
    lr : float or None, default=None
        Learning rate (the peak rate under a one-cycle schedule); *preset*.
    lr_schedule : {"onecycle", "cosine", "constant"} or None, default=None
        Learning rate over the fit, stepped every batch; *preset*. See
        :mod:`sklearn_imgcls._core.schedules`.
    batch_size : int or None, default=None
        Images per training batch (prediction uses larger batches for small
        images); *preset*.
    max_epochs : int or None, default=None
        Training epochs (fewer when early stopping triggers); *preset*.
    validation_fraction : float or None, default=None
        Share of the training data held out (stratified) to report
        ``valid_loss``, ``scoring`` and drive early stopping.
    early_stopping : int or None, default=None
        Patience in epochs without improvement of the validation loss; the
        best epoch's weights are restored. Needs ``validation_fraction``.
    scoring : str, list of str or None, default=None
        scikit-learn scorer names tracked on the validation split each epoch.
    augment : "auto", str, list or None, default="auto"
        Training-only augmentation; ``"auto"``: the *preset*'s, ``None``:
        none. Else a preset (``"light"``, ``"standard"``,
        ``"strong"``; all include horizontal flips) or a list of
        augmentation names / ``(name, params)`` pairs applied in order to
        each training batch; see :func:`sklearn_imgcls.list_augmentations`.
    sampler : str, (str, dict) or None, default=None
        Rebalancing of the training split: ``"oversample"``,
        ``"undersample"`` (per epoch) or ``"smote"`` (once, on the training
        split only), optionally with parameters, e.g.
        ``("smote", {"k_neighbors": 3})``.
    tta : str, list or None, default=None
        Test-time augmentation: ``predict_proba`` averages the probabilities
        of the image and of these views: ``"flip_h"``, ``"flip_v"``,
        ``"shift"`` (four one-pixel-per-16 shifts).
    adversarial : dict or None, default=None
        Adversarial training, e.g. ``{"method": "pgd", "eps": 0.1, "steps":
        5, "fraction": 0.5}``: before each training step that share of the
        batch is replaced by attacks on the current network (``eps`` in
        ``[0, 1]`` units for uint8 images; ``norm`` "inf" or "2");
        ``{"method": "trades", "eps": 0.1, "steps": 5, "beta": 6.0}`` uses
        the TRADES loss instead. See :mod:`sklearn_imgcls.robustness`.
    normalize : bool, default=True
        Standardise each channel with the training images' mean and std.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Autocast dtype of the network's computations (weights and the loss
        stay float32). ``"auto"``: bfloat16 on CUDA cards and CPUs that
        compute it natively (AVX512-BF16 or AMX), float16 on older CUDA
        cards, else float32. Float16 training scales the loss with a
        :class:`torch.amp.GradScaler`.
    channels_last : bool, default=True
        NHWC memory layout for convolutions (faster with oneDNN and cuDNN).
    compile : bool, default=False
        Run the network through :func:`torch.compile` (compiles on the first
        batch; pays off on long fits and GPUs).
    num_workers : int or "auto", default="auto"
        DataLoader worker processes decoding file inputs in ``fit`` and
        ``predict`` (``"auto"``: one per core this process may use, at most
        4; 0: in the main process; always 0 inside daemonic processes such as
        Dask's workers). In-memory arrays need none: batches are sliced directly.
    num_threads : int or None, default=None
        CPU threads torch computes with during ``fit`` and ``predict``
        (restored afterwards). None keeps the process's setting: all cores, or
        ``cores // n_jobs`` inside ``GridSearchCV(n_jobs=...)`` on loky. Set
        it for results that repeat exactly across machines and backends (see
        :mod:`sklearn_imgcls._core.threads`).
    random_state : int, RandomState or None, default=None
        Seed for weights, shuffling, splitting and augmentation: the same
        seed and the same thread count give the same predictions on CPU.
    verbose : int, default=0
        0 is silent, 1 prints a table row per epoch, 2 adds a progress bar.
    callbacks : list or None, default=None
        Extra skorch callbacks (instances or ``(name, callback)`` pairs).
    accelerator : accelerate.Accelerator or None, default=None
        Train through skorch's Hugging Face Accelerate integration (device
        placement, mixed precision, ``accelerate launch`` on several GPUs);
        ``device`` is then left to the accelerator.
    threshold : float or array-like of float, default=0.5
        Multi-label targets only (ignored for one label per image):
        ``predict`` sets a label whose probability is at least ``threshold``,
        one float in (0, 1) or one per label (follows the current value after
        ``fit``).
    log : str, list of str or None, default=None
        Log each fit to experiment trackers through skorch's ``TensorBoard``
        and ``MlflowLogger`` callbacks: the parameters (and the values the
        preset resolved, as ``lr_``, ``max_epochs_``, ...), every epoch's
        losses and scores, and at the end the epochs run and the seconds
        taken. ``"tensorboard:DIR"`` writes a new subfolder of ``DIR`` per fit
        (``"tensorboard"``: ``runs``); ``"mlflow:URI"`` creates one run per
        fit, URI ``sqlite:///mlflow.db``, ``http://host:5000``, a folder or
        ``file:///abs`` (MLflow's file store), or none (``"mlflow"``: MLflow's
        default); end it with ``#EXPERIMENT`` to pick the experiment (default
        ``sklearn-imgcls``). A list logs to several. Needs
        ``pip install 'sklearn-imgcls[tensorboard]'`` / ``'[mlflow]'``.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The class labels, in the order of ``predict_proba``'s columns
        (multi-label: the labels, in the order of the indicator columns).
    multilabel_ : bool
        Whether the model was fitted on multi-label targets.
    n_features_in_ : int
        Values per image, ``C * H * W``.
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    net_ : skorch.NeuralNetClassifier
        The trained skorch network.
    history_ : skorch.History
        Per-epoch (and per-batch) training log.
    backbone_ : str
        The backbone trained (``backbone``, or the preset's when unset).
    backbone_params_ : dict or None
        The backbone builder's extra arguments used.
    max_epochs_ : int
        The epochs asked for (fewer ran when early stopping triggered: see
        ``len(history_)``).
    batch_size_ : int
        Images per training batch.
    lr_ : float
        The (peak) learning rate.
    lr_schedule_ : str
        The learning-rate schedule.
    augment_ : str, list or None
        The training augmentation (``augment``, or the preset's for ``"auto"``).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_imgcls import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(image_shape=(1, 8, 8), max_epochs=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        backbone: str | None = None,
        *,
        backbone_params: dict | None = None,
        preset: str = "accurate",
        image_shape: tuple[int, ...] | None = None,
        loss: str = "cross_entropy",
        loss_params: dict | None = None,
        class_weight: str | dict | None = None,
        optimizer: Any = "adam",
        optimizer_params: dict | None = None,
        lr: float | None = None,
        lr_schedule: str | None = None,
        batch_size: int | None = None,
        max_epochs: int | None = None,
        validation_fraction: float | None = None,
        early_stopping: int | None = None,
        scoring: str | list | None = None,
        augment: str | list | None = "auto",
        sampler: str | tuple | None = None,
        tta: str | list | None = None,
        adversarial: dict | None = None,
        normalize: bool = True,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        compile: bool = False,
        num_workers: int | str = "auto",
        num_threads: int | None = None,
        random_state: Any = None,
        verbose: int = 0,
        callbacks: list | None = None,
        accelerator: Any = None,
        threshold: float = 0.5,
        log: str | list | None = None,
    ) -> None:
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.preset = preset
        self.image_shape = image_shape
        self.loss = loss
        self.loss_params = loss_params
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.augment = augment
        self.sampler = sampler
        self.tta = tta
        self.adversarial = adversarial
        self.normalize = normalize
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.num_workers = num_workers
        self.num_threads = num_threads
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.threshold = threshold
        self.log = log

    def _param(self, name: str) -> Any:
        value = getattr(self, name)
        if name not in PRESET_PARAMS:
            return value
        if name == "backbone_params" and self.backbone is not None:
            return value  # the preset's backbone_params belong to the preset's backbone
        return preset_value(self.preset, name, value)

    def _validate_extra_params(self) -> None:
        get_registry().get("backbone", self._param("backbone"))  # also rejects an unknown preset
        check_dict("backbone_params", self._param("backbone_params"))

    def _fixed_recipe(self, image_shape: tuple[int, int, int]) -> dict:
        """Trained from scratch for exactly these images: the whole registry recipe but the input adaptation."""
        recipe = registry_recipe(self._param("backbone"), self._param("backbone_params"), image_shape, 0)
        return {key: recipe[key] for key in ("source", "backbone", "backbone_params", "build_size", "build_channels",
                                             "replace_head")}

    def _build_backbone(self, image_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        channels, height, width = image_shape
        name = self._param("backbone")
        module = get_registry().build("backbone", name, channels, n_classes, (height, width),
                                      **(self._param("backbone_params") or {}))
        spec = get_registry().get("backbone", name)
        if spec.first_conv is not None:  # a builder that ignores in_channels would fail later in torch's words
            built_for = first_conv_channels(module, spec)
            if built_for is not None and built_for != channels:
                raise ValueError(
                    f"Backbone {name!r} (plugin {spec.plugin!r}) was asked for {channels}-channel images but its "
                    f"first_conv takes {built_for} channels: its build() ignores in_channels. Fix the plugin, or "
                    f"pass images with {built_for} channels."
                )
        return module
