"""Training and inference internals: nothing here is public API.

The estimator base and its skorch net, the network wrapper, batch
iteration, schedules, resampling, test-time views, parameter checks,
pretrained-weight loading, input decoding and file-safety helpers. The
public modules one level up (``cnn``, ``transfer``, ``features``, ...) are
built on these; names here may change between releases without notice.
"""
