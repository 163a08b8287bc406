import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';

/**
 * An HTTP server that knows its requests in flight, so that closing it ends them cleanly:
 * requests still arriving on open connections get 503 with Retry-After, responses in progress
 * close their connection once sent (a keep-alive connection would otherwise hold the close up
 * until it times out), event streams end (their clients resume elsewhere with Last-Event-ID),
 * and whatever is still open after the grace period is cut.
 */
export class HttpFront {
  readonly server: Server;
  private readonly inFlight = new Set<ServerResponse>();
  private closing: Promise<void> | undefined;

  constructor(
    app: RequestListener,
    /** How long requests in progress may take once closing starts; then their connections are cut. */
    private readonly graceMs: number,
  ) {
    this.server = createServer((req, res) => {
      if (this.closing) return refuse(res);
      this.inFlight.add(res);
      res.once('close', () => this.inFlight.delete(res));
      app(req, res);
    });
  }

  /** Binds host:port and resolves with the port; a failure names the port and the setting that moves it. */
  listen(port: number, host: string, what: string, setting: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`${what} ${host}:${port}: ${err.message} (set ${setting})`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Stops accepting and resolves once every connection has closed. Safe to call twice. */
  close(): Promise<void> {
    return (this.closing ??= new Promise<void>((resolve) => {
      const cut = setTimeout(() => this.server.closeAllConnections(), this.graceMs);
      this.server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      this.server.closeIdleConnections();
      for (const res of this.inFlight) {
        if (!res.headersSent) {
          res.setHeader('Connection', 'close');
        } else if (!res.writableEnded) {
          // Headers out and no end: an event stream (every other answer goes out in one write).
          res.end();
          res.socket?.end();
        }
      }
    }));
  }
}

function refuse(res: ServerResponse): void {
  res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1', Connection: 'close' });
  res.end(JSON.stringify({ error: { message: 'shutting down: retry (another instance, or this one once restarted)' } }));
}
