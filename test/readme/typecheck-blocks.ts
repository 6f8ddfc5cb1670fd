/**
 * Typechecks Markdown code blocks (see readme-blocks.ts for the convention)
 * against the packages' sources, with the compiler options of
 * test/tsconfig.json, in one TypeScript program, and reports each error at
 * its line in the Markdown file.
 * @module
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { CodeBlock } from './readme-blocks.js';

/** The names a top-level statement declares (imports, variables, functions, classes, types). */
function declaredNames(statement: ts.Statement): string[] {
  const names: string[] = [];
  const bind = (name: ts.BindingName) => {
    if (ts.isIdentifier(name)) names.push(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) bind(element.name);
  };
  if (ts.isImportDeclaration(statement)) {
    const clause = statement.importClause;
    if (clause?.name) names.push(clause.name.text);
    const bindings = clause?.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.push(bindings.name.text);
    else if (bindings) for (const element of bindings.elements) names.push(element.name.text);
  } else if (ts.isVariableStatement(statement)) {
    for (const declaration of statement.declarationList.declarations) bind(declaration.name);
  } else if (
    ts.isFunctionDeclaration(statement) ||
    ts.isClassDeclaration(statement) ||
    ts.isInterfaceDeclaration(statement) ||
    ts.isTypeAliasDeclaration(statement) ||
    ts.isEnumDeclaration(statement)
  ) {
    if (statement.name) names.push(statement.name.text);
  }
  return names;
}

/** The top-level statements of `code`, each with its text and the names it declares. */
function statements(code: string, fileName: string): Array<{ text: string; names: string[] }> {
  const source = ts.createSourceFile(fileName, code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  return source.statements.map((s) => ({ text: s.getText(source), names: declaredNames(s) }));
}

/**
 * Typechecks every block not skipped. Answers, per block, its errors as
 * `<file>:<line>: error TS<code>: <message>` (empty when it typechecks).
 * A block marked `run` is checked alone; another gets the prelude's
 * declarations of the names it does not declare itself.
 * @example
 * const errors = typecheckBlocks(blocks, { file: 'README.md', tsconfig: 'test/tsconfig.json', prelude: 'test/readme/prelude.ts' });
 */
export function typecheckBlocks(blocks: CodeBlock[], options: { file: string; tsconfig: string; prelude: string }): Map<CodeBlock, string[]> {
  const config = ts.readConfigFile(options.tsconfig, ts.sys.readFile);
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(options.tsconfig));
  const compilerOptions: ts.CompilerOptions = { ...parsed.options, noEmit: true };
  const prelude = statements(readFileSync(options.prelude, 'utf8'), options.prelude);
  // Virtual files beside the prelude, so that imports resolve as they do for the tests.
  const dir = dirname(options.prelude);
  const virtual = new Map<string, { block: CodeBlock; text: string; blockLines: number }>();
  for (const block of blocks) {
    if (block.skip) continue;
    const own = new Set(statements(block.code, 'block.ts').flatMap((s) => s.names));
    const added = block.run ? [] : prelude.filter((s) => s.names.length > 0 && s.names.every((n) => !own.has(n))).map((s) => s.text);
    // The block first, so that its lines keep their numbers; imports are hoisted.
    const text = [block.code, 'export {};', ...added].join('\n');
    virtual.set(join(dir, `${options.file.replace(/\W/g, '_')}_line_${block.line}.ts`), { block, text, blockLines: block.code.split('\n').length });
  }
  const host = ts.createCompilerHost(compilerOptions);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => virtual.has(name) || fileExists.call(host, name);
  host.readFile = (name) => virtual.get(name)?.text ?? readFile.call(host, name);
  host.getSourceFile = (name, language, ...rest) => {
    const v = virtual.get(name);
    return v ? ts.createSourceFile(name, v.text, language, true) : getSourceFile.call(host, name, language, ...rest);
  };
  const program = ts.createProgram([...virtual.keys()], compilerOptions, host);
  const results = new Map<CodeBlock, string[]>();
  for (const [name, v] of virtual) {
    const source = program.getSourceFile(name)!;
    const errors = ts.getPreEmitDiagnostics(program, source).filter((d) => d.category === ts.DiagnosticCategory.Error);
    results.set(
      v.block,
      errors.map((d) => {
        const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
        if (d.file?.fileName !== name || d.start === undefined) return `${options.file}:${v.block.line}: error TS${d.code}: ${message}`;
        const { line } = d.file.getLineAndCharacterOfPosition(d.start);
        const where = line < v.blockLines ? `${options.file}:${v.block.line + line}` : `${options.file}:${v.block.line} (in the prelude added to the block, ${options.prelude})`;
        return `${where}: error TS${d.code}: ${message}`;
      }),
    );
  }
  return results;
}
