// Command etcd is the etcd server, exactly as go.etcd.io/etcd/server/v3's own
// main: a wrapper because `go install …@version` refuses etcd's replace lines.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
