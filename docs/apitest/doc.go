// Package apitest keeps the documentation true to the code. It has no
// code of its own, only tests:
//
//   - openapi_test.go and routes_test.go: docs/openapi.yaml against the
//     issuer's real routes, both ways. Every route pattern the issuer's
//     sources register (found with go/ast and evaluated) is documented with
//     its method on the right listener; every documented operation is
//     served by the real gatehouse binary on the listener(s) the document
//     names and on no other, so admin operations are never served on the
//     public listener;
//   - quotes_test.go: every configuration excerpt that docs/gateways/*.md
//     marks as a quote of a tested file is still a verbatim excerpt of it,
//     and every relative link of those pages, docs/api.md,
//     docs/architecture.md, README.md and CONTRIBUTING.md resolves;
//   - contributing_test.go: every `path: Symbol` example of CONTRIBUTING.md
//     names a file or package that declares the symbol.
package apitest
