/**
 * A loopback TCP proxy of our own, to cut one client off a shared server (Redis) without touching the
 * server: other suites keep using it. `cut()` closes every open connection and refuses new ones (each is
 * closed as soon as it is accepted); `restore()` forwards again.
 */
import net from 'node:net';

export interface TcpProxy {
  /** the port the proxy listens on (127.0.0.1) */
  port: number;
  /** connections accepted (forwarded or refused) since start */
  readonly accepted: number;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let open = true;
  let accepted = 0;
  const live = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted++;
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    live.add(client);
    live.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      open = false;
      for (const s of live) s.destroy();
      live.clear();
    },
    restore() {
      open = true;
    },
    async close() {
      open = false;
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
