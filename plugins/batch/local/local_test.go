package local_test

import (
	"testing"

	"github.com/pando-wms/pando/plugins/batch"
	"github.com/pando-wms/pando/plugins/batch/batchtest"
	_ "github.com/pando-wms/pando/plugins/batch/local"
)

func TestConformance(t *testing.T) {
	sys, err := batch.New(batch.Config{Kind: "local"})
	if err != nil {
		t.Fatal(err)
	}
	batchtest.Run(t, sys, batchtest.Options{Unknown: "999999"})
}
