package main

import (
	"github.com/spf13/cobra"
)

// addV1Aliases adds the Hydra v1 verb forms that published tutorials
// still use: `clients create|get|list|delete`, `keys create|get|delete`,
// `token client|introspect|revoke`. They run the same code as the v2 verbs.
func addV1Aliases(root *cobra.Command) {
	clients := &cobra.Command{Use: "clients", Short: "Hydra v1 form of the client verbs (create, get, list, update, delete)"}
	create := createClientCmd("create", v1Names)
	get := newGetClientCmd()
	get.Use, get.Aliases = "get ID [ID...]", nil
	list := newListClientsCmd()
	list.Use, list.Aliases = "list", nil
	upd := updateClientCmd("update ID", v1Names)
	del := newDeleteClientCmd()
	del.Use, del.Aliases = "delete ID [ID...]", nil
	clients.AddCommand(create, get, list, upd, del)

	keys := &cobra.Command{Use: "keys", Short: "Hydra v1 form of the key verbs (create, get, delete)"}
	kc, kg, kd := newCreateJWKSCmd(), newGetJWKSCmd(), newDeleteJWKSCmd()
	kc.Use, kg.Use, kd.Use = "create SET", "get SET", "delete SET [SET...]"
	keys.AddCommand(kc, kg, kd)

	token := &cobra.Command{Use: "token", Short: "Hydra v1 form of the token verbs (client, introspect, revoke)"}
	ti, tr := newIntrospectCmd(), newRevokeCmd()
	ti.Use, tr.Use = "introspect TOKEN", "revoke TOKEN"
	token.AddCommand(clientCredentialsCmd("client", true), ti, tr)
	token.AddCommand(newTokenUserCmd())

	root.AddCommand(clients, keys, token)
}
