/** Something a request names that does not exist, or that its caller may not see: answered alike (404), so the answer does not confirm it exists. */
export class NotFound extends Error {
  override readonly name = 'NotFound';
  readonly status = 404;
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(`${what} ${id} not found`);
  }
}
