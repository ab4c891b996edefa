/**
 * MySQL identifier quoting: the one place a schema, table or column name is put into SQL text. A name is
 * wrapped in backticks, a backtick inside it doubled, so any name the settings give reads as that name
 * (test/ownership.unit.test.ts keeps hand-quoted `` `db`.`table` `` from coming back elsewhere).
 */

/** `` `name` `` (a backtick in the name doubled). */
export function quoteIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `` `schema`.`table` ``: a table in a given database. */
export function quoteTable(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
