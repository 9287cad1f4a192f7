/**
 * Reads every import of the TypeScript files under src/ — static `import … from`, side-effect `import '…'`,
 * `export … from` and dynamic `import()` — and names the folder (or top-level file) on each side, so
 * that tests/unit/architecture.test.ts can check them against the rules in docs/architecture.md.
 *
 * `node scripts/import-graph.ts` prints the folder → folder and folder → package edges of the current
 * tree, with the files behind each edge: what the rules table has to allow.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder above scripts/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** One import found in a source file. */
export interface ImportFound {
  /** The importing file, relative to the repository root (`src/slack/register-handlers.ts`). */
  file: string;
  line: number;
  /** The specifier as written, or undefined for a dynamic `import()` of something that is not a string literal. */
  specifier: string | undefined;
  kind: 'static' | 'dynamic';
}

/** Every `.ts` file under `dir`, relative to the repository root, sorted. */
export function listSourceFiles(dir = 'src', root = REPO_ROOT): string[] {
  const found: string[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) found.push(relative(root, path));
    }
  };
  walk(join(root, dir));
  return found.sort();
}

/**
 * The unit a file belongs to: its folder with a trailing slash (`src/runbooks/engine/`), or the file
 * itself when it sits directly in src/ (`src/config.ts`). Paths are relative to the repository root.
 */
export function unitOf(file: string): string {
  const dir = dirname(file);
  return dir === 'src' ? file : `${dir}/`;
}

/**
 * What an import points at: a unit (for a relative specifier, resolved from the importing file), a
 * package name (`@aws-sdk/client-iam`, `zod`), or a Node built-in (`node:fs`).
 */
export function targetOf(file: string, specifier: string): string {
  if (specifier.startsWith('.')) {
    const path = relative(REPO_ROOT, resolve(REPO_ROOT, dirname(file), specifier));
    return path.startsWith('src/') ? unitOf(path) : path;
  }
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/** Every import in one file's source text. */
export function readImports(file: string, text: string): ImportFound[] {
  const { code, strings } = maskSource(text);
  const lineAt = (index: number) => code.slice(0, index).split('\n').length;
  const found: ImportFound[] = [];
  // Masked string literals read '§<n>'; their text is strings[n].
  const staticForms = [/^[ \t]*(?:import|export)\b[^;]*?\bfrom\s*'§(\d+)'/gm, /^[ \t]*import\s*'§(\d+)'/gm];
  for (const form of staticForms) {
    for (const m of code.matchAll(form)) {
      found.push({ file, line: lineAt(m.index), specifier: strings[Number(m[1])], kind: 'static' });
    }
  }
  for (const m of code.matchAll(/(?<![.\w$])import\s*\(\s*('§(\d+)'\s*[,)])?/g)) {
    const literal = m[2];
    found.push({
      file,
      line: lineAt(m.index),
      specifier: literal === undefined ? undefined : strings[Number(literal)],
      kind: 'dynamic',
    });
  }
  return found.sort((a, b) => a.line - b.line);
}

/** Every import of every file under src/. */
export function readAllImports(root = REPO_ROOT): ImportFound[] {
  return listSourceFiles('src', root).flatMap((file) =>
    readImports(file, readFileSync(join(root, file), 'utf8')),
  );
}

const REGEX_AFTER_WORD = new Set([
  'return',
  'typeof',
  'instanceof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'yield',
  'await',
]);

/**
 * The source with comments, template text and regular-expression literals blanked (newlines kept, so
 * line numbers stay right) and every quoted string replaced by `'§<n>'`, its text kept in `strings`.
 * Then an import-looking phrase inside a comment, a message or a pattern is never read as an import.
 */
export function maskSource(text: string): { code: string; strings: string[] } {
  const strings: string[] = [];
  let out = '';
  let i = 0;
  // Braces opened inside `${…}` of each template literal we are in (to know where the expression ends).
  const templates: number[] = [];
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  const lastSignificant = () => {
    const trimmed = out.trimEnd();
    const word = /[\w$]+$/.exec(trimmed)?.[0];
    return { char: trimmed.at(-1) ?? '', word };
  };
  const readTemplateText = () => {
    // At the character after ` or after the } closing an expression: up to the closing ` or the next ${.
    const start = i;
    while (i < text.length) {
      const c = text[i];
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === '`') {
        out += `${blank(text.slice(start, i))}\``;
        i++;
        return;
      }
      if (c === '$' && text[i + 1] === '{') {
        out += `${blank(text.slice(start, i))}\${`;
        i += 2;
        templates.push(0);
        return;
      }
      i++;
    }
    out += blank(text.slice(start));
  };
  while (i < text.length) {
    const c = text[i] ?? '';
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i);
      const stop = end === -1 ? text.length : end;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      out += blank(text.slice(i, stop));
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c && text[j] !== '\n') {
        if (text[j] === '\\') {
          value += text.slice(j, j + 2);
          j += 2;
        } else {
          value += text[j];
          j++;
        }
      }
      strings.push(value);
      out += `'§${strings.length - 1}'`;
      i = j + 1;
    } else if (c === '`') {
      out += '`';
      i++;
      readTemplateText();
    } else if (c === '{' && templates.length > 0) {
      templates[templates.length - 1] = (templates.at(-1) ?? 0) + 1;
      out += c;
      i++;
    } else if (c === '}' && templates.length > 0 && templates.at(-1) === 0) {
      templates.pop();
      out += '}';
      i++;
      readTemplateText();
    } else if (c === '}' && templates.length > 0) {
      templates[templates.length - 1] = (templates.at(-1) ?? 1) - 1;
      out += c;
      i++;
    } else if (c === '/') {
      const { char, word } = lastSignificant();
      const startsRegex =
        char === '' ||
        '(,=:[!&|?{};+-*%<>~^'.includes(char) ||
        (word !== undefined && REGEX_AFTER_WORD.has(word));
      if (!startsRegex) {
        out += c;
        i++;
        continue;
      }
      let j = i + 1;
      let inClass = false;
      while (j < text.length && text[j] !== '\n') {
        const r = text[j];
        if (r === '\\') j++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        j++;
      }
      if (text[j] !== '/') {
        // No closing slash on this line: it was a division after all.
        out += c;
        i++;
        continue;
      }
      j++;
      while (j < text.length && /[a-z]/.test(text[j] ?? '')) j++;
      out += `/${blank(text.slice(i + 1, j - 1))}/`.padEnd(j - i, ' ');
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return { code: out, strings };
}

/** `node scripts/import-graph.ts`: the unit → unit and unit → package edges, with their files. */
function printEdges(): void {
  const edges = new Map<string, Set<string>>();
  for (const found of readAllImports()) {
    const from = unitOf(found.file);
    const to =
      found.specifier === undefined ? '(non-literal import())' : targetOf(found.file, found.specifier);
    if (to === from || to.startsWith('node:')) continue;
    const key = `${from} -> ${to}`;
    edges.set(key, (edges.get(key) ?? new Set()).add(`${found.file}:${found.line}`));
  }
  for (const [edge, files] of [...edges].sort(([a], [b]) => a.localeCompare(b))) {
    process.stdout.write(`${edge.padEnd(56)} ${[...files].join(' ')}\n`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) printEdges();
