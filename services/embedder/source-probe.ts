/**
 * What the embedder may ask the source table directly (when it has the DB_* settings and read access):
 * whether the table has rows, and which of some NDCs it still holds. The truncate
 * sweep uses it so that a reload still running (its rows not yet committed or not yet streamed) never
 * empties search: documents whose NDC is still in the table are kept, and nothing is swept while the
 * table is empty (up to TRUNCATE_EMPTY_WAIT_SECONDS).
 */
import type { MysqlPool } from '../core/clients/mysql.ts';
import { wrapError } from '../core/errors.ts';
import { quoteTable } from '../core/sql.ts';

export interface SourceProbe {
  hasRows(): Promise<boolean>;
  present(ndcs: readonly string[]): Promise<Set<string>>;
}

export function createSourceProbe(mysql: MysqlPool, schema: string, table: string): SourceProbe {
  const t = quoteTable(schema, table);
  const guard = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      throw wrapError(e, 'MYSQL_QUERY_FAILED', `cannot ${what} (truncate sweep)`, {
        context: { table: `${schema}.${table}` },
        retryable: true,
        remedy: 'check that MySQL is reachable with the DB_* settings; the sweep waits and is retried',
      });
    }
  };
  return {
    hasRows: () =>
      guard(
        'check whether the table has rows',
        async () => (await mysql.query(`SELECT 1 FROM ${t} LIMIT 1`)).length > 0,
      ),
    present: (ndcs) =>
      guard('look up NDCs', async () => {
        const out = new Set<string>();
        for (let i = 0; i < ndcs.length; i += 1000) {
          const chunk = ndcs.slice(i, i + 1000);
          const rows = await mysql.query<{ NDC: string }>(`SELECT NDC FROM ${t} WHERE NDC IN (?)`, [chunk]);
          for (const r of rows) out.add(String(r.NDC));
        }
        return out;
      }),
  };
}
