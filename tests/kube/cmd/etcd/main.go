// Copyright: contributors to slurm_exporter.incident_response
// SPDX-License-Identifier: Apache-2.0
//
// Built by tests/kube/build.py for the real-cluster test tier; not part of the collection.
// The same main as go.etcd.io/etcd/server/v3 main.go, at the version that k8s.io/kubernetes pins.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
