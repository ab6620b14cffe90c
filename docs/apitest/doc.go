// Package apitest keeps the documentation true to the code. It has no
// code of its own, only tests:
//
//   - quotes_test.go: every configuration excerpt that docs/gateways/*.md
//     marks as a quote of a tested file is still a verbatim excerpt of it,
//     and every relative link in those pages resolves.
package apitest
