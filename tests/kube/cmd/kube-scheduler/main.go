// Copyright: contributors to slurm_exporter.incident_response
// SPDX-License-Identifier: Apache-2.0
//
// Built by tests/kube/build.py for the real-cluster test tier; not part of the collection.
// The same main as k8s.io/kubernetes cmd/kube-scheduler/scheduler.go: pods get a (kwok) node.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version" // for version metric registration
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	command := app.NewSchedulerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
