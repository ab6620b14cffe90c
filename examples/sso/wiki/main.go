// Command wiki is one of the two relying parties of the central SSO demo
// (the other is tickets): sign in once at the issuer, be signed in to
// both; sign out of one and back-channel logout signs you out of both.
//
//	wiki --listen 127.0.0.1:5001 --issuer http://127.0.0.1:4444 --client-id wiki --client-secret wiki-demo-secret
package main

import "github.com/gatehouse-dev/gatehouse/examples/sso/rp"

func main() {
	rp.Main(rp.Config{Name: "wiki", Title: "Team Wiki", ClientID: "wiki", ClientSecret: "wiki-demo-secret"}, "127.0.0.1:5001")
}
