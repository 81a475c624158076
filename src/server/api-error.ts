// Errors a client causes or meets, as OpenAI shapes them: a status, a message, and the parameter at fault.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 401 ? 'authentication_error' : status === 503 ? 'server_error' : status === 404 ? 'not_found_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  body(): string {
    return JSON.stringify({ error: { message: this.message, type: this.type, param: this.param, code: null } });
  }
}
