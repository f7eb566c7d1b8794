import type { ZodError } from 'zod';
import { DomainError, type DomainErrorKind } from './errors';

/** An error whose status and message are meant for the client; anything else becomes a bare 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
  }

  static fromZod(err: ZodError, where: string): HttpError {
    const issues = err.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
    const first = issues[0];
    return new HttpError(400, 'invalid_request', `invalid ${where}: ${first ? `${first.path}: ${first.message}` : 'bad input'}`, issues);
  }
}

/** The one place where the domain's errors become HTTP statuses. */
const STATUS: Record<DomainErrorKind, number> = { not_found: 404, conflict: 409, invalid: 400, forbidden: 403 };

/** The HttpError a thrown value stands for, or undefined for an unexpected failure (a 500). */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof DomainError) return new HttpError(STATUS[err.kind], err.code, err.message);
  return undefined;
}
