/**
 * The TypeScript code blocks of a Markdown file, with where they are and
 * what the README test should do with them.
 *
 * The convention, for README.md (and any Markdown file checked this way):
 * - Every fenced block whose info string is `ts` or `typescript` is checked.
 *   Other blocks (`sh`, `json`...) are ignored.
 * - A block is typechecked as a module of its own against the packages'
 *   sources. A block may be a fragment: names it uses without declaring them
 *   come from test/readme/prelude.ts (each top-level declaration there is
 *   added to a block that does not declare that name itself).
 * - An HTML comment on the line just before the fence (invisible on GitHub)
 *   says more, `<!-- readme-test: ... -->`:
 *   - `run`: the block is a whole program. It is typechecked without the
 *     prelude, then run under `dispatch run` (the real CLI and scheduler):
 *     it must dispatch at least one call, every call must succeed, and it
 *     must stop cleanly on SIGTERM.
 *   - `skip: <reason>`: the block is not checked (the reason is required).
 * @module
 */

/** A fenced TypeScript block of a Markdown file. */
export interface CodeBlock {
  /** 1-based line of the block's first code line (the line after the fence). */
  line: number;
  /** The nearest heading above the block, or '(top)'. */
  heading: string;
  /** The code, as written. */
  code: string;
  /** From `<!-- readme-test: run -->`. */
  run: boolean;
  /** From `<!-- readme-test: skip: reason -->`. */
  skip?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;
const DIRECTIVE = /^\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*$/;

/**
 * Finds the TypeScript blocks of `markdown`. Throws, naming the line, on an
 * unclosed fence or a directive it does not know.
 * @example
 * const blocks = codeBlocks(readFileSync('README.md', 'utf8'));
 * console.log(blocks.map((b) => `README.md:${b.line} ${b.heading}`));
 */
export function codeBlocks(markdown: string, file = 'README.md'): CodeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (h) heading = h[1]!.trim();
    const fence = FENCE.exec(line);
    if (!fence) continue;
    const [, indent, marks, lang] = fence;
    const close = new RegExp(`^${indent}${marks![0]}{${marks!.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end]!)) end++;
    if (end >= lines.length) throw new Error(`${file}:${i + 1}: the code block opened here is never closed`);
    if (lang === 'ts' || lang === 'typescript') {
      const directive = i > 0 ? DIRECTIVE.exec(lines[i - 1]!) : null;
      const block: CodeBlock = { line: i + 2, heading, code: lines.slice(i + 1, end).join('\n'), run: false };
      if (directive) {
        const text = directive[1]!;
        const skip = /^skip:\s*(.+)$/.exec(text);
        if (text === 'run') block.run = true;
        else if (skip) block.skip = skip[1]!;
        else throw new Error(`${file}:${i}: unknown directive "<!-- readme-test: ${text} -->": use "run" or "skip: <reason>"`);
      }
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}
