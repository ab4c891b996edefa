/**
 * The project's structural rules, held on the source text (no server), as docs/architecture.md states them:
 *
 * - No module imports upward ("No module imports upward": which folder may import which).
 * - One owner per thing ("Where each format lives"): Redis key names only in services/core/keys.ts; the
 *   rndc14 column list only in services/core/rndc14.ts; identifiers quoted into SQL only by
 *   services/core/sql.ts; one percentile definition (services/core/percentiles.ts).
 *
 * Every rule reports the offending lines (file:line and the line). Each rule is also run on a sample of the
 * regression it stands for and on a lookalike that is fine, so a pattern too loose or too narrow fails here
 * rather than letting a regression through.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';

const ROOT = path.join(import.meta.dirname, '..');
const SOURCE = /\.(ts|mjs)$/;

/** Source files under `dir` (relative to the project root, forward slashes). */
function sources(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!fs.existsSync(abs)) return [];
  if (fs.statSync(abs).isFile()) return [dir];
  return fs
    .readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => SOURCE.test(f) && !f.split(path.sep).includes('node_modules'))
    .map((f) => `${dir}/${f.split(path.sep).join('/')}`)
    .sort();
}

interface Hit {
  at: string;
  line: string;
}

/** A rule: the lines of a source text that break it. */
type LineRule = (line: string) => boolean;

/** The rule catches each of its regressions (`bad`) and lets each lookalike (`good`) pass. */
function expectRule(rule: LineRule, lines: { bad: readonly string[]; good: readonly string[] }): void {
  for (const line of lines.bad) expect(rule(line), line).toBe(true);
  for (const line of lines.good) expect(rule(line), line).toBe(false);
}

function hits(files: readonly string[], rule: LineRule): Hit[] {
  return files.flatMap((f) =>
    fs
      .readFileSync(path.join(ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => (rule(line) ? [{ at: `${f}:${i + 1}`, line: line.trim() }] : [])),
  );
}

const ALL = ['services', 'bin', 'infra', 'main.ts', 'scripts', 'bench', 'test'].flatMap(sources);
const except = (...owners: string[]) => ALL.filter((f) => !owners.includes(f));
const under = (...dirs: string[]) => ALL.filter((f) => dirs.some((d) => f === d || f.startsWith(`${d}/`)));

// ------------------------------------------------------------------------------------------- imports

/** docs/architecture.md's four import greps, one rule each (the folders each applies to, and its pattern). */
const IMPORT_RULES: { name: string; files: string[]; pattern: RegExp; bad: string; good: string }[] = [
  {
    name: 'services/core imports only services/core',
    files: under('services/core'),
    pattern: /from '(\.\.\/)+(backfill|binlog-reader|embedder|cli|seed|stack|infra|test|bench)\//,
    bad: "import { applyBatch } from '../../embedder/apply.ts';",
    good: "import { makeKeys } from '../keys.ts';",
  },
  {
    name: 'a service imports services/core, never another service',
    files: under(
      'services/backfill',
      'services/binlog-reader',
      'services/embedder',
      'services/seed',
      'services/stack',
    ),
    pattern: /from '\.\.\/(backfill|binlog-reader|embedder|cli|seed|stack)\//,
    bad: "import { resyncByDifference } from '../embedder/resync.ts';",
    good: "import { makeKeys } from '../core/keys.ts';",
  },
  {
    name: 'nothing in services/ or bin/ imports test/, bench/ or infra/',
    files: under('services', 'bin'),
    pattern: /from '(\.\.\/)+(test|bench|infra)\//,
    bad: "import { insertRows } from '../../test/support/factories.ts';",
    good: "import { quoteTable } from '../core/sql.ts';",
  },
  {
    name: 'infra/ imports services/core only',
    files: under('infra'),
    pattern: /from '\.\.\/(services\/(backfill|binlog-reader|embedder|cli|seed|stack)|test|bench)\//,
    bad: "import { CONSUMER_DEFAULTS } from '../services/embedder/consumer.ts';",
    good: "import { METRIC_NAMES } from '../services/core/metrics.ts';",
  },
];

describe('no module imports upward (docs/architecture.md)', () => {
  for (const r of IMPORT_RULES) {
    it(r.name, () => {
      expect(r.files.length).toBeGreaterThan(0);
      expect(r.pattern.test(r.bad), 'the rule catches its regression').toBe(true);
      expect(r.pattern.test(r.good), 'the rule leaves a fine import alone').toBe(false);
      expect(hits(r.files, (l) => r.pattern.test(l))).toEqual([]);
    });
  }
});

// ------------------------------------------------------------------------------------------ key names

/**
 * A key built on a key or a prefix: an interpolation whose value is a key, a prefix or a Keys member,
 * followed at once by more key text (`${keys.shardCheckpoints(s)}:lease`, `${env.REDIS_STATE_PREFIX}x`,
 * `${prefixKey}${id}`). A SCAN pattern (`${keys.docPrefix}*`) and a test choosing a prefix of its own
 * (`REDIS_STATE_PREFIX: \`${…}sqs:\``) are not keys.
 */
function buildsKey(line: string): boolean {
  if (/REDIS_(STATE|DOC)_PREFIX\s*:/.test(line)) return false;
  for (const m of line.matchAll(/\$\{([^{}]*)\}(?=[\w$]|:[\w$])/g)) {
    const value = (m[1] as string).replace(/\s+as\s+\w+$|!$/g, '').trim();
    if (/\b[kK]eys\??\.\w+/.test(value)) return true;
    if (/(^|\.)\w*(Key|KEY|key|[a-z]Prefix|PREFIX)(\([^)]*\))?$/.test(value)) return true;
  }
  return false;
}

/** Each key's text after the state prefix, up to its first argument: `reader:checkpoint`, `backfill:run:`. */
function keyStems(): string[] {
  const ARG = '\u0000';
  const keys: Keys = makeKeys({ REDIS_INDEX: ARG, REDIS_DOC_PREFIX: '\u0001', REDIS_STATE_PREFIX: '' });
  const texts = Object.entries(keys).map(([name, v]) => {
    if (name === 'deadLetterMarker') return keys.deadLetterMarker({ shardId: ARG, sequenceNumber: ARG });
    return typeof v === 'function' ? (v as (...a: string[]) => string)(ARG, ARG, ARG) : String(v);
  });
  const stems = texts
    .map((t) => t.split(ARG)[0] as string)
    .filter((t) => t !== '' && !t.startsWith('\u0001'));
  return [...new Set(stems)];
}

const STEMS = keyStems();
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A key's own text written out: right after a literal prefix (`'drugsync:reader:checkpoint'`) or after `}`. */
const KEY_TEXT = new RegExp(
  `(['"\`][\\w.-]*:|\\})(${STEMS.map((t) => escape(t) + (/\w$/.test(t) ? '(?!\\w)' : '')).join('|')})`,
);

const KEY_OWNERS = ['services/core/keys.ts', 'test/keys.unit.test.ts', 'test/ownership.unit.test.ts'];

describe('Redis key names come from services/core/keys.ts only', () => {
  it('knows the keys it looks for', () => {
    expect(STEMS).toEqual(
      expect.arrayContaining([
        'reader:checkpoint',
        'backfill:run:',
        'embedder:shards:',
        'dlq:seen:',
        'meta:',
      ]),
    );
  });

  it('no key is built on another key, a prefix or a Keys member', () => {
    // Assess the rule on its regressions and their lookalikes
    expectRule(buildsKey, {
      bad: [
        'createRedisLease(redis, `${deps.checkpointKey}:lease`, owner, ttl);',
        'const marker = `${keys.deadLetters}:seen:${shard}`;',
        'await redis.get(`${env.REDIS_STATE_PREFIX}backfill:snapshot`);',
        'const k = (shard: string, tx: string) => `${deferredKey}${shard}:${tx}`;',
        "pipe.call('JSON.GET', `${env.REDIS_DOC_PREFIX}${ndc}`, '$');",
        'return `${keys.statePrefix}index:${keys.index}:vector`;',
      ],
      good: [
        "redis.scan(cursor, 'MATCH', `${keys.docPrefix}*`, 'COUNT', 1000);",
        'problems.push(`${key}: ${issue.message}`);',
        "return makeRow({ NDC: `${prefix}${String(seq).padStart(11 - prefix.length, '0')}` }, seq);",
        'const sqsKeys = suiteKeys({ ...env, REDIS_STATE_PREFIX: `${env.REDIS_STATE_PREFIX}sqs:` });',
        'const ndc = key.slice(keys.docPrefix.length);',
      ],
    });
    // Act + Assess
    expect(hits(except(...KEY_OWNERS), buildsKey)).toEqual([]);
  });

  it("no key's text is written out", () => {
    expectRule((l) => KEY_TEXT.test(l), {
      bad: [
        "const keys = { readerCheckpoint: 'drugsync:reader:checkpoint' };",
        'await redis.hget(`${env.REDIS_STATE_PREFIX}backfill:run:${label}`, "cleaned");',
        "const truncate = keys.statePrefix + 'x'; const k = 'ds:embedder:truncate_floor';",
        "statusKey: 'drugsync:status:embedder',",
      ],
      good: [
        "log.info('embedder: status written', { key: keys.serviceStatus('embedder') });",
        '/** `<state>embedder:truncate` */',
        'expect(keys.readerCheckpoint).toBe(checkpointKey);',
      ],
    });
    expect(hits(except(...KEY_OWNERS), (l) => KEY_TEXT.test(l))).toEqual([]);
  });
});

// ------------------------------------------------------------------------ column list, SQL quoting

/** A list of identifiers quoted inline: `.map((c) => \`\\\`${c}\\\`\`)`. */
const QUOTING_MAP = /\.map\(\(?\s*(\w+)\s*\)?\s*=>\s*`\\`\$\{\1\}\\``\s*\)/;
/** The rndc14 column names derived again, or a row's values taken column by column. */
const COLUMN_LIST =
  /RNDC14_COLUMNS\.map\(\s*\(?\s*(\w+)\s*\)?\s*=>\s*\1\.name\s*\)|RNDC14_COLUMN_NAMES\.map\(/;
/** An identifier hand-quoted into SQL: `` `${db}`.`${t}` ``, `` `${db}`.* ``, `FROM \`${t}\``, `DATABASE \`${db}\``. */
const HAND_QUOTED = /\\`\$\{[^}]+\}\\`\.|\b(DATABASE|TABLES?|FROM|INTO|JOIN|UPDATE|ON|EXISTS)\s+\\`\$\{/;

describe("rndc14's column list and SQL quoting, one owner each", () => {
  it('the column list is written only by services/core/rndc14.ts', () => {
    expectRule((l) => QUOTING_MAP.test(l) || COLUMN_LIST.test(l), {
      bad: [
        "await admin.query(`INSERT INTO rndc14 (${COLUMN_NAMES.map((c) => `\\`${c}\\``).join(',')}) VALUES ?`, [v]);",
        'const cols = names.map(c => `\\`${c}\\``).join(",");',
        'export const COLUMN_NAMES: readonly string[] = RNDC14_COLUMNS.map((c) => c.name);',
        'rows.map((r) => RNDC14_COLUMN_NAMES.map((c) => r[c] ?? null))',
      ],
      good: [
        'await conn.query(rndc14InsertSql(t, { ignore: true }), [[rndc14Values(row)]]);',
        "const cols = Object.keys(bCols).map(quoteIdent).join(',');",
        'const kinds = RNDC14_COLUMNS.map((c) => c.kind);',
      ],
    });
    const owners = ['services/core/rndc14.ts', 'services/core/sql.ts', 'test/rndc14-sql.unit.test.ts'];
    expect(
      hits(
        except(...owners, 'test/ownership.unit.test.ts'),
        (l) => QUOTING_MAP.test(l) || COLUMN_LIST.test(l),
      ),
    ).toEqual([]);
  });

  it('identifiers are quoted into SQL only by services/core/sql.ts', () => {
    expectRule((l) => HAND_QUOTED.test(l), {
      bad: [
        'const t = `\\`${schema}\\`.\\`${table}\\``;',
        'await conn.query(`SELECT COUNT(*) AS n FROM \\`${cfg.DB_NAME}\\`.\\`${cfg.DB_TABLE}\\``);',
        "await q(`GRANT SELECT, LOCK TABLES ON \\`${o.database}\\`.* TO '${repl}'@'%'`);",
        'await admin.query(`DROP DATABASE IF EXISTS \\`${env.DB_NAME}\\``);',
      ],
      good: [
        'await conn.query(`LOCK TABLES ${quoteTable(o.schema, o.table)} READ`);',
        'remedy: `run \\`${INSTALL_COMMAND}\\` (\\`./drugsync run --embedder minilm\\` runs it too)`,',
        "await admin.query('DELETE FROM rndc14 WHERE NDC IN (?)', [ndcs]);",
      ],
    });
    expect(
      hits(except('services/core/sql.ts', 'test/ownership.unit.test.ts'), (l) => HAND_QUOTED.test(l)),
    ).toEqual([]);
  });
});

// --------------------------------------------------------------------------------------- percentile

/** A definition of a percentile function (declared, or assigned as an arrow or a function). */
const PERCENTILE_DEFINITION =
  /\bfunction\s+percentiles?\b|\b(const|let|var)\s+percentiles?\s*=|^\s*(export\s+)?percentiles?\s*[:(]/;

describe('one percentile definition', () => {
  it('is services/core/percentiles.ts', () => {
    expectRule((l) => PERCENTILE_DEFINITION.test(l), {
      bad: [
        'export function percentile(sorted: readonly number[], p: number): number | null {',
        'const percentile = (values: number[], p: number) => values[Math.ceil((p / 100) * values.length) - 1];',
      ],
      good: ['const [p50, p99] = percentiles(ms, [50, 99]);', "import { percentiles } from './x.ts';"],
    });
    const defined = hits(except('test/ownership.unit.test.ts'), (l) => PERCENTILE_DEFINITION.test(l));
    expect(defined.map((h) => h.at.replace(/:\d+$/, ''))).toEqual(['services/core/percentiles.ts']);
  });
});
