/**
 * DDL seen in binlog `query` events, classified for one table. zongji's includeSchema does not filter query
 * events, and MariaDB logs DDL as standalone statements, so we parse the statement ourselves: names may be
 * back-quoted, schema-qualified, or unqualified (resolved against the event's current database, the `USE`
 * context recorded in the query event).
 *
 * - truncate: `TRUNCATE [TABLE] t`
 * - resync: the table was replaced or removed: `RENAME TABLE ... t ...`, `ALTER TABLE t RENAME ...`,
 *   `DROP TABLE [IF EXISTS] ..., t, ...`, `CREATE TABLE t ...` (DROP + CREATE), `DROP DATABASE db`
 * - alter: any other `ALTER TABLE t` (ADD/DROP/MODIFY COLUMN ...): no event; row images keep decoding from
 *   the binlog's own column metadata (binlog_row_metadata=FULL)
 * - null: not about our table (other tables, grants, BEGIN/COMMIT, ...)
 */
export type DdlKind = 'truncate' | 'resync' | 'alter';

export interface TableRef {
  schema: string;
  table: string;
}

/** Removes comments (keeping MySQL versioned comments' content) and collapses whitespace. */
export function stripSqlComments(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === "'" || c === '"' || c === '`') {
      const end = findQuoteEnd(sql, i);
      out += sql.slice(i, end);
      i = end;
    } else if (c === '/' && next === '*') {
      const close = sql.indexOf('*/', i + 2);
      const body = sql.slice(i + 2, close < 0 ? sql.length : close);
      // /*!50100 ... */ and /*M! ... */ are executed by the server: keep their content
      const versioned = /^(?:!|M!)\d*\s?([\s\S]*)$/.exec(body);
      out += versioned ? ` ${versioned[1]} ` : ' ';
      i = close < 0 ? sql.length : close + 2;
    } else if ((c === '-' && next === '-' && /\s/.test(sql[i + 2] ?? ' ')) || c === '#') {
      const nl = sql.indexOf('\n', i);
      out += ' ';
      i = nl < 0 ? sql.length : nl + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/\s+/g, ' ').trim();
}

function findQuoteEnd(sql: string, start: number): number {
  const q = sql[start];
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === '\\' && q !== '`') {
      i += 2;
      continue;
    }
    if (sql[i] === q) {
      if (sql[i + 1] === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}

/** A tiny tokenizer: identifiers (plain or back-quoted), dots, commas, parentheses, other words. */
interface Token {
  text: string;
  /** identifier value (unquoted) when the token can be an identifier */
  ident?: string;
}

function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '`') {
      const end = findQuoteEnd(sql, i);
      const raw = sql.slice(i + 1, end - 1).replace(/``/g, '`');
      tokens.push({ text: sql.slice(i, end), ident: raw });
      i = end;
    } else if (c === "'" || c === '"') {
      const end = findQuoteEnd(sql, i);
      tokens.push({ text: sql.slice(i, end) });
      i = end;
    } else if (/[A-Za-z0-9_$\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j] as string)) j++;
      const w = sql.slice(i, j);
      tokens.push({ text: w, ident: w });
      i = j;
    } else {
      tokens.push({ text: c });
      i++;
    }
  }
  return tokens;
}

class Cursor {
  i = 0;
  constructor(readonly t: Token[]) {}
  peek(k = 0): Token | undefined {
    return this.t[this.i + k];
  }
  isWord(w: string, k = 0): boolean {
    const tok = this.peek(k);
    return !!tok && tok.text.toUpperCase() === w && tok.text[0] !== '`';
  }
  acceptWord(...ws: string[]): boolean {
    for (const [k, w] of ws.entries()) if (!this.isWord(w, k)) return false;
    this.i += ws.length;
    return true;
  }
  /** [schema.]table; undefined if the next token is not an identifier. */
  tableName(defaultSchema: string): TableRef | undefined {
    const a = this.peek();
    if (!a?.ident) return undefined;
    this.i++;
    if (this.peek()?.text === '.' && this.peek(1)?.ident !== undefined) {
      const b = this.peek(1) as Token;
      this.i += 2;
      return { schema: a.ident, table: b.ident as string };
    }
    return { schema: defaultSchema, table: a.ident };
  }
  done(): boolean {
    return this.i >= this.t.length;
  }
}

function same(a: TableRef, b: TableRef): boolean {
  // MySQL on Linux compares names case-sensitively unless lower_case_table_names is set; a false
  // positive costs a re-sync, a false negative loses a TRUNCATE, so compare case-insensitively.
  return a.schema.toLowerCase() === b.schema.toLowerCase() && a.table.toLowerCase() === b.table.toLowerCase();
}

/** Classifies one statement for the table `ours`; `currentSchema` is the query event's database. */
export function classifyDdl(query: string, currentSchema: string, ours: TableRef): DdlKind | null {
  const sql = stripSqlComments(query);
  const c = new Cursor(tokenize(sql));
  const name = () => c.tableName(currentSchema);

  if (c.acceptWord('TRUNCATE')) {
    c.acceptWord('TABLE');
    const t = name();
    return t && same(t, ours) ? 'truncate' : null;
  }
  if (c.acceptWord('RENAME')) {
    if (!c.acceptWord('TABLE') && !c.acceptWord('TABLES')) return null;
    c.acceptWord('IF', 'EXISTS');
    while (!c.done()) {
      const from = name();
      if (!from) return null;
      if (c.acceptWord('WAIT')) c.i++;
      else c.acceptWord('NOWAIT');
      if (!c.acceptWord('TO')) return null;
      const to = name();
      if (!to) return null;
      if (same(from, ours) || same(to, ours)) return 'resync';
      if (c.peek()?.text !== ',') return null;
      c.i++;
    }
    return null;
  }
  if (c.acceptWord('DROP')) {
    c.acceptWord('TEMPORARY');
    if (c.acceptWord('DATABASE') || c.acceptWord('SCHEMA')) {
      c.acceptWord('IF', 'EXISTS');
      const db = c.peek()?.ident;
      return db !== undefined && db.toLowerCase() === ours.schema.toLowerCase() ? 'resync' : null;
    }
    if (!c.acceptWord('TABLE') && !c.acceptWord('TABLES')) return null;
    c.acceptWord('IF', 'EXISTS');
    while (!c.done()) {
      const t = name();
      if (!t) return null;
      if (same(t, ours)) return 'resync';
      if (c.peek()?.text !== ',') return null;
      c.i++;
    }
    return null;
  }
  if (c.acceptWord('CREATE')) {
    c.acceptWord('OR', 'REPLACE');
    if (c.acceptWord('TEMPORARY')) return null; // a temporary table shadows nothing in the binlog stream
    if (!c.acceptWord('TABLE')) return null;
    c.acceptWord('IF', 'NOT', 'EXISTS');
    const t = name();
    return t && same(t, ours) ? 'resync' : null;
  }
  if (c.acceptWord('ALTER')) {
    c.acceptWord('ONLINE');
    c.acceptWord('IGNORE');
    if (!c.acceptWord('TABLE')) return null;
    c.acceptWord('IF', 'EXISTS');
    const t = name();
    if (!t || !same(t, ours)) return null;
    // ALTER TABLE t ..., RENAME [TO|AS] x  (also RENAME COLUMN / RENAME INDEX / RENAME KEY, which are not)
    for (let k = c.i; k < c.t.length; k++) {
      const tok = c.t[k] as Token;
      if (tok.text.toUpperCase() !== 'RENAME' || tok.text[0] === '`') continue;
      const nxt = c.t[k + 1]?.text.toUpperCase();
      if (nxt === 'COLUMN' || nxt === 'INDEX' || nxt === 'KEY') continue;
      return 'resync';
    }
    return 'alter';
  }
  return null;
}
