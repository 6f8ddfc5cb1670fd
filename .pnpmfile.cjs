// pnpm hooks of this workspace.
// beforePacking: the package.json in a tarball (pnpm pack / pnpm publish)
// keeps what an installed package uses: no scripts (they point at this
// repository's ../../scripts) and no devDependencies. pnpm already turns
// `workspace:` versions into the packed versions.
module.exports = {
  hooks: {
    beforePacking(pkg) {
      delete pkg.scripts;
      delete pkg.devDependencies;
      return pkg;
    },
  },
};
