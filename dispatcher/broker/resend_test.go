package broker_test

import (
	"testing"

	"github.com/pando-wms/pando/dispatcher/wire"
)

// A report resent before the first one is durable (its ack was lost) is
// acknowledged once the commit lands, not refused; after it, a resend is
// refused as stale.
func TestResentReportAckedWhenDurable(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	first, err := a.report(as, &wire.Report{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.report(as, &wire.Report{})
	if err != nil {
		t.Fatalf("resent report before commit refused: %v", err)
	}
	if again.calls() != 0 {
		t.Fatal("resent report acknowledged before commit")
	}
	h.commit()
	if first.calls() != 1 || again.calls() != 1 || again.err != nil {
		t.Fatalf("after commit: first %d, again %d (%v) calls; want both acknowledged", first.calls(), again.calls(), again.err)
	}
	if _, err := a.report(as, &wire.Report{}); err == nil {
		t.Fatal("report after the durable one accepted")
	}
}

// An agent that reconnects while its report awaits the commit is not told
// to drop that job: it must keep the report and resend it.
func TestReconnectKeepsPendingReport(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.addTask(taskOpts{})
	a := h.connect("a1", "")
	a.want(1)
	as := a.runOne()
	if _, err := a.report(as, &wire.Report{ExitCode: 3}); err != nil { // retried: job ready again
		t.Fatal(err)
	}
	a.disconnect()
	hello := h.hello("a1", "")
	hello.Running = []wire.RunningJob{{JobID: as.JobID, Attempt: as.Attempt}}
	b := h.connectHello(hello)
	if len(b.drop) != 0 {
		t.Fatalf("drop list %v, want empty while the report is not durable", b.drop)
	}
	d, err := b.report(as, &wire.Report{ExitCode: 3})
	if err != nil {
		t.Fatalf("resent report after reconnect: %v", err)
	}
	h.commit()
	if d.calls() != 1 || d.err != nil {
		t.Fatalf("resent report: %d calls, err %v", d.calls(), d.err)
	}
}
