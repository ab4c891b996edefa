/**
 * A loopback TCP proxy of our own, to cut one client off a shared server (Redis, MariaDB, kinesalite) without
 * touching the server: other suites keep using it.
 * - `cut()` closes every open connection and refuses new ones (each is closed as soon as it is accepted);
 * - `blackhole()` is a network that silently loses everything: open connections stay open but nothing is
 *   forwarded either way, and new connections are accepted and then never answered (no error reaches the
 *   client: only its own timeouts end the wait);
 * - `restore()` forwards again (connections left over from a blackhole are closed: their streams lost data).
 */
import net from 'node:net';

export interface TcpProxy {
  /** the port the proxy listens on (127.0.0.1) */
  port: number;
  /** connections accepted (forwarded, refused or swallowed) since start */
  readonly accepted: number;
  cut(): void;
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

type Mode = 'open' | 'cut' | 'blackhole';

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = 'open';
  let accepted = 0;
  const live = new Set<net.Socket>();
  /** sockets that lost data in a blackhole: closed on restore */
  const swallowed = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted++;
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    if (mode === 'blackhole') {
      swallowed.add(client);
      client.on('error', () => client.destroy()).on('close', () => swallowed.delete(client));
      client.resume(); // read and drop
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
      swallowed.delete(client);
      swallowed.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (d: Buffer) => {
        if (mode === 'blackhole' || swallowed.has(from)) {
          swallowed.add(from);
          swallowed.add(to);
          return;
        }
        to.write(d);
      });
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const destroyAll = (sockets: Set<net.Socket>) => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      mode = 'cut';
      destroyAll(live);
      destroyAll(swallowed);
    },
    blackhole() {
      mode = 'blackhole';
      for (const s of live) swallowed.add(s);
    },
    restore() {
      mode = 'open';
      destroyAll(swallowed);
    },
    async close() {
      mode = 'cut';
      destroyAll(live);
      destroyAll(swallowed);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
