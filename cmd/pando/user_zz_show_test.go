package main

import (
	"fmt"
	"testing"
	"time"
)

func TestZZShow(t *testing.T) {
	f := newFake(t)
	f.addTask(1, "finished", "failed", "running")
	e := 1
	now := time.Now()
	f.jobs[3].ExitCode = &e
	f.jobs[3].ErrorCode, f.jobs[3].ErrorName, f.jobs[3].Error = 1203, "payload_failed", "exit status 1"
	f.jobs[3].Attempts = nil
	c := withToken(t, f)
	for _, a := range [][]string{{"tasks"}, {"jobs"}, {"job", "3"}, {"whoami"}, {"job", "3", "-o", "json"}, {"wait", "1"}} {
		out, errs, err := c.run(a...)
		fmt.Printf("$ pando %v\n%s%s(err=%v)\n", a, out, errs, err)
	}
	_ = now
	_, _, err := cli{t: t, env: map[string]string{"PANDO_TOKEN": "x"}}.run("--server", "http://127.0.0.1:1", "wait", "1")
	fmt.Println(err)
}
