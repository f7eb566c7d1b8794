// The domain's own errors. Services and repositories throw these; the routes turn them into HTTP
// statuses in one place (httpStatusOf in http-error.ts), so nothing below the routes knows HTTP.

export type DomainErrorKind = 'not_found' | 'conflict' | 'invalid' | 'forbidden';

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    /** a stable machine-readable code, e.g. `lease_ended` */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (message: string) => new DomainError('not_found', 'not_found', message);
export const conflict = (code: string, message: string) => new DomainError('conflict', code, message);
export const invalid = (code: string, message: string) => new DomainError('invalid', code, message);
