// Command tickets is one of the two relying parties of the central SSO
// demo (the other is wiki).
//
//	tickets --listen 127.0.0.1:5002 --issuer http://127.0.0.1:4444 --client-id tickets --client-secret tickets-demo-secret
package main

import "github.com/gatehouse-dev/gatehouse/examples/sso/rp"

func main() {
	rp.Main(rp.Config{Name: "tickets", Title: "Ticket Desk", ClientID: "tickets", ClientSecret: "tickets-demo-secret"}, "127.0.0.1:5002")
}
