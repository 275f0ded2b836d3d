/**
 * Base class of every error the toolkit raises on purpose, so callers can tell them from bugs. Its kinds:
 * ConfigError, ShapeError, DataError (FormatError is one), BackendError, DisposedError; see core's README.
 */
export class FrError extends Error {
  override name = 'FrError';
}

/** Tensors did not fit an op: wrong shape, dtype, batch size, or tensors on different backends. */
export class ShapeError extends FrError {
  override name = 'ShapeError';
}

/** A tensor was used after it was disposed. */
export class DisposedError extends FrError {
  override name = 'DisposedError';
}

/** A config, parameter or plugin definition is wrong: an unknown name or key, a value out of range. */
export class ConfigError extends FrError {
  override name = 'ConfigError';
}

/** A backend failed: no adapter, a lost device, a refused allocation, a kernel or thread that failed. */
export class BackendError extends FrError {
  override name = 'BackendError';
}

/** Training or evaluation data was invalid: out-of-range labels, NaN or Inf values, a bad image. */
export class DataError extends FrError {
  override name = 'DataError';
}

/** A file was corrupt, truncated or of the wrong kind (a kind of DataError). */
export class FormatError extends DataError {
  override name = 'FormatError';
}
