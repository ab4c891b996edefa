/**
 * The least-privilege Redis ACL rule of a drugsync user: exactly the commands drugsync sends (every
 * service, the operator commands, the Lua scripts' own calls, ioredis' handshake) on exactly its keys
 * (the documents, the state prefix, the index name, which RediSearch 2.x treats as a key). One owner:
 * `drugsync redis-acl` prints it, docs/deploy.md "Redis ACL" shows it for the default prefixes (a test
 * keeps the two equal), and the TLS/ACL test runs the whole pipeline under it with the server's ACL LOG
 * empty afterwards.
 *
 * A command added to drugsync must be added here; the test fails otherwise (REDIS_ACL_DENIED).
 */
import type { KeyConfig } from '../keys.ts';

/** Every command drugsync sends, by what uses it (lower case, `parent|sub` for one subcommand). */
export const REDIS_ACL_COMMANDS = {
  /** ioredis' handshake (library name and version), server detection (version, modules), wait for PING */
  connection: ['ping', 'client|setinfo', 'info', 'module|list', 'command|info'],
  /** the index: create, check, status, search */
  search: ['ft.create', 'ft.info', 'ft.search'],
  /** documents: compare-and-set writes (in Lua), verify, re-sync and backfill reads */
  json: ['json.get', 'json.set', 'json.merge', 'json.arrlen'],
  /** the Lua scripts (apply, leases, fenced checkpoints, table state, dead letters, verify's scan) */
  scripting: ['eval', 'evalsha'],
  /** checkpoints, leases (SET NX PX), backfill snapshot and run state, embedding cache, markers */
  strings: ['get', 'set', 'mget', 'del', 'exists', 'expire', 'pexpire', 'persist', 'pttl'],
  /** bookkeeping per NDC, status hashes, shard checkpoints, table state, backfill failures, deferred deletes */
  hashes: ['hset', 'hget', 'hgetall', 'hmget', 'hdel', 'hkeys', 'hlen', 'hincrby', 'hscan'],
  /** the local dead-letter stream */
  streams: ['xadd', 'xrange', 'xdel', 'xlen'],
  /** sweeps and counts by prefix (status, verify, backfill, tombstones) */
  keyspace: ['scan'],
} as const;

/** A key prefix as an ACL glob pattern matching every key under it (glob characters escaped). */
function prefixPattern(prefix: string): string {
  return `~${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

/** The key patterns: documents, state, and the index name. */
export function redisAclKeyPatterns(cfg: KeyConfig): string[] {
  const index = cfg.REDIS_INDEX.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
  return [prefixPattern(cfg.REDIS_DOC_PREFIX), prefixPattern(cfg.REDIS_STATE_PREFIX), `~${index}`];
}

/** The rule's permissions as ACL SETUSER arguments (after the user name, state and password). */
export function redisAclPermissions(cfg: KeyConfig): string[] {
  const commands = Object.values(REDIS_ACL_COMMANDS).flat();
  return [...redisAclKeyPatterns(cfg), 'resetchannels', '-@all', ...commands.map((c) => `+${c}`)];
}

/**
 * The whole rule as one ACL SETUSER command: `reset` first, so applying it again gives exactly this user;
 * `password` is written as given (`>secret`, or `#<sha256 hex>` for a hashed one).
 */
export function redisAclSetUser(user: string, cfg: KeyConfig, password = '><password>'): string {
  return ['ACL', 'SETUSER', user, 'reset', 'on', password, ...redisAclPermissions(cfg)].join(' ');
}
