/** Base class of every error the toolkit raises on purpose, so callers can tell them from bugs. */
export class FrError extends Error {
  override name = 'FrError';
}

/** A tensor had the wrong shape or dtype for an op. */
export class ShapeError extends FrError {
  override name = 'ShapeError';
}

/** A tensor was used after it was disposed. */
export class DisposedError extends FrError {
  override name = 'DisposedError';
}

/** A config or parameter object failed its schema. */
export class ConfigError extends FrError {
  override name = 'ConfigError';
}

/** A backend refused an allocation or lost its device. */
export class BackendError extends FrError {
  override name = 'BackendError';
}

/** Training input or state was invalid: out-of-range labels, NaN or Inf values. */
export class DataError extends FrError {
  override name = 'DataError';
}

/** A file was corrupt, truncated or of the wrong kind. */
export class FormatError extends FrError {
  override name = 'FormatError';
}
