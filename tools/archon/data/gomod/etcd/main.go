// Command etcd is etcd's own server entry point, built from the Go module proxy.
//
// etcd's root module (go.etcd.io/etcd/v3, which holds its main package) replaces its sibling modules
// with local folders, so `go install` refuses it; this wrapper calls the same etcdmain.Main that
// etcd's main.go calls (etcd v3.6 main.go: `etcdmain.Main(os.Args)`).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
