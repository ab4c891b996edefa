/**
 * Credentials that survive a rotation: one provider per secret per process, shared by every client that
 * logs in with it (MySQL pool, the reader's control connections and both binlog connections; every Redis
 * client).
 *
 * The secret is read once and cached. A client whose login is refused (MySQL 1045 and friends, Redis
 * WRONGPASS) calls `refresh(cause)`: the secret is read again, at most once per `minIntervalMs` (concurrent
 * callers share one read), and when it holds other credentials `version` grows and `cached` holds the new
 * ones; the client reconnects with them. Each re-read logs one line naming the secret's ARN, never a value
 * (the values are registered for masking when they arrive, see ./secrets.ts). A re-read that fails leaves
 * the cached credentials in force: the client's own backoff retries, and the next refresh reads again.
 *
 * Credentials given as plain settings (DB_PASSWORD, REDIS_PASSWORD) have no secret to re-read: their
 * provider is static and `refresh` returns them unchanged.
 */
import { errorMessage } from '../errors.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';

/** Least seconds between two re-reads of a secret after refused logins (CREDENTIALS_REFRESH_MIN_SECONDS). */
export const DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS = 5;

export interface Credentials {
  /** empty when the server needs no user name (Redis' default user) */
  user: string;
  password: string;
}

export interface CredentialsProvider {
  /** what the credentials open, for log lines: "MySQL", "Redis" */
  readonly what: string;
  /** the secret they come from (undefined: plain settings, nothing to re-read) */
  readonly secretArn: string | undefined;
  /** the credentials in force once read (null before the first read) */
  readonly cached: Credentials | null;
  /** grows by one each time a re-read finds other credentials */
  readonly version: number;
  /** the cached credentials, read from the secret on first use */
  current(): Promise<Credentials>;
  /**
   * After a refused login: re-reads the secret unless it was read less than the minimum interval ago, and
   * returns the credentials now in force (compare `version` to see whether they changed).
   */
  refresh(cause: unknown): Promise<Credentials>;
}

export interface SecretCredentialsOptions {
  what: string;
  secretArn: string;
  /** reads and decodes the secret (a failure is logged and leaves the cached credentials in force) */
  read: () => Promise<Credentials>;
  /** least time between two reads of the secret after the first */
  minIntervalMs: number;
  log?: Logger | undefined;
  now?: () => number;
}

/** Credentials from plain settings: nothing to re-read. */
export function staticCredentials(what: string, credentials: Credentials): CredentialsProvider {
  return {
    what,
    secretArn: undefined,
    cached: credentials,
    version: 0,
    current: () => Promise.resolve(credentials),
    refresh: () => Promise.resolve(credentials),
  };
}

class SecretCredentials implements CredentialsProvider {
  cached: Credentials | null = null;
  version = 0;
  private lastRead = -Infinity;
  private reading: Promise<Credentials> | null = null;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: SecretCredentialsOptions) {
    this.log = opts.log ?? createLogger({ component: 'credentials' });
    this.now = opts.now ?? Date.now;
  }

  get what(): string {
    return this.opts.what;
  }

  get secretArn(): string {
    return this.opts.secretArn;
  }

  async current(): Promise<Credentials> {
    if (this.cached) return this.cached;
    // the first read: its failure is the caller's (the service cannot start without credentials)
    this.reading ??= this.opts.read().finally(() => (this.reading = null));
    const first = await this.reading;
    this.lastRead = this.now();
    this.cached ??= first;
    return this.cached;
  }

  refresh(cause: unknown): Promise<Credentials> {
    if (this.reading) return this.reading;
    if (!this.cached) return this.current();
    if (this.now() - this.lastRead < this.opts.minIntervalMs) return Promise.resolve(this.cached);
    this.reading = this.reread(cause).finally(() => (this.reading = null));
    return this.reading;
  }

  private async reread(cause: unknown): Promise<Credentials> {
    const old = this.cached as Credentials;
    const fields = { what: this.opts.what, secret_arn: this.opts.secretArn };
    this.log.warn(`${this.opts.what} refused the login: re-reading the secret`, {
      ...fields,
      cause: errorMessage(cause),
    });
    this.lastRead = this.now();
    let fresh: Credentials;
    try {
      fresh = await this.opts.read();
    } catch (e) {
      this.log.warn(
        `re-reading the ${this.opts.what} secret failed: retrying with the credentials in force`,
        {
          ...fields,
          error: e,
        },
      );
      return old;
    }
    if (fresh.user === old.user && fresh.password === old.password) {
      this.log.warn(`the ${this.opts.what} secret holds the credentials already in use: retrying later`, {
        ...fields,
        retry_after_ms: this.opts.minIntervalMs,
      });
      return old;
    }
    this.cached = fresh;
    this.version += 1;
    this.log.info(`the ${this.opts.what} secret holds new credentials: reconnecting with them`, {
      ...fields,
      user: fresh.user || undefined,
      version: this.version,
    });
    return fresh;
  }
}

export function secretCredentials(o: SecretCredentialsOptions): CredentialsProvider {
  return new SecretCredentials(o);
}

const shared = new Map<string, CredentialsProvider>();

/**
 * The one provider of this process for `key` (the secret's ARN and how it is read), created by `create` on
 * first use: every client of that secret shares its cache and its re-reads.
 */
export function sharedCredentials(key: string, create: () => CredentialsProvider): CredentialsProvider {
  let p = shared.get(key);
  if (!p) {
    p = create();
    shared.set(key, p);
  }
  return p;
}
