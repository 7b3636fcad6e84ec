// Package nodetest runs Node.js scripts from Go tests against npm packages
// installed once into a cache directory outside the repository.
//
// Tests use it to check shoal against independent implementations written
// in JavaScript: the aws-kinesis-agg aggregation library and the AWS SDK
// for JavaScript v3. Packages are installed under
// $XDG_CACHE_HOME/shoal-test-node (usually ~/.cache/shoal-test-node), one
// directory per pinned package or lock file, and reused by later runs.
//
// Without node or npm, or when the install fails, the calling test is
// skipped with a message saying why, except in CI (the environment variable
// CI is "true"), where it fails.
package nodetest
