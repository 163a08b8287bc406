import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a server, to cut connections for real: the client sees a reset or a
 * truncated response exactly as when a load balancer, a NAT or the network drops it.
 */
export interface TcpProxy {
  url: string;
  /** Connections open now (client side). */
  readonly open: number;
  /** Destroys every open connection, both sides. */
  cutAll(): void;
  /** The next time the server's bytes match, drop them and destroy that connection (the request reached the server; its answer never arrives). */
  cutResponseOnce(match: (chunk: Buffer) => boolean): Promise<void>;
  /** Resolves once the proxy has passed on server bytes that match. */
  forwarded(match: (chunk: Buffer) => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let pendingCut: { match: (chunk: Buffer) => boolean; done: () => void } | undefined;
  const watchers = new Set<{ match: (chunk: Buffer) => boolean; done: () => void }>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      const cut = pendingCut;
      if (cut?.match(chunk)) {
        pendingCut = undefined;
        drop();
        cut.done();
        return;
      }
      client.write(chunk);
      for (const watcher of [...watchers]) {
        if (!watcher.match(chunk)) continue;
        watchers.delete(watcher);
        watcher.done();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    get open() {
      return pairs.size;
    },
    cutAll: () => {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    cutResponseOnce: (match) => new Promise<void>((done) => (pendingCut = { match, done })),
    forwarded: (match) => new Promise<void>((done) => watchers.add({ match, done })),
    close: async () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
