/**
 * `npm run gen`: writes every generated file (see generated.ts) and removes the leftovers in
 * folders that only generators own. Paths resolve from the working directory, the repository
 * root under npm, because this file runs from dist/ where its own location would mislead.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { generatedFiles, staleFiles } from "./generated.js";

const root = process.cwd();
const files = await generatedFiles();

for (const file of files) {
  const target = resolve(root, file.path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, file.content);
  console.log(file.path);
}

for (const path of await staleFiles(root, files)) {
  await rm(resolve(root, path));
  console.log(`removed ${path}`);
}
