package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge"
)

func newEdgeCmd() *cobra.Command {
	var (
		cfg                    edge.Config
		tokenFile, caFile, pin string
		cacheSize              string
		lf                     logFlags
	)
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Relay pilots on nodes without a route to the dispatcher (HPC login nodes)",
		Long: `Serves the agent protocol on --listen to pilots that cannot reach the dispatcher and
relays them over one QUIC connection to --dispatcher. Pilots point --dispatcher at the
edge and verify it with --ca-file DATA/ca.pem (created on first start; add the names
pilots dial with --host). The edge holds only its own agent token: each pilot still
presents its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			cfg.Logger = log
			if cfg.CacheBytes, err = task.ParseSize(cacheSize); err != nil {
				return fmt.Errorf("--cache-size: %w", err)
			}
			if cfg.Token, err = agentToken(tokenFile); err != nil {
				return err
			}
			if cfg.TLS, err = pki.DialTLS(cfg.Upstream, caFile, pin, wire.ALPN); err != nil {
				return fmt.Errorf("--dispatcher: %w", err)
			}
			e, err := edge.New(cfg)
			if err != nil {
				return err
			}
			return e.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "0.0.0.0:7444", "UDP address for pilots (QUIC)")
	f.StringVar(&cfg.DataDir, "data", "pando-edge", "data directory (its CA, certificate and agent ID)")
	f.StringSliceVar(&cfg.Hosts, "host", nil, "extra host names or IPs for its certificate (the names pilots dial)")
	f.StringVar(&cfg.Upstream, "dispatcher", "127.0.0.1:7443", "the dispatcher's agents HOST:PORT")
	f.StringVar(&tokenFile, "token-file", os.Getenv("PANDO_TOKEN_FILE"), "file holding the edge's agent token")
	f.StringVar(&caFile, "ca-file", "", "CA certificate (PEM) the dispatcher's certificate must chain to")
	f.StringVar(&pin, "pin", "", "instead of --ca-file: the SHA-256 of the dispatcher's certificate (sha256:HEX)")
	f.StringVar(&cfg.Name, "name", "", "edge name (default edge-HOSTNAME)")
	f.StringVar(&cfg.DataListen, "data-listen", "", "serve job inputs to pilots (their --input-proxy) on this TCP HOST:PORT, from a cache in DATA/cache")
	f.StringSliceVar(&cfg.DataAllow, "data-allow", nil, "storage HOST:PORT the input server may fetch from (repeatable; required with --data-listen)")
	f.StringVar(&cacheSize, "cache-size", "100GiB", "byte budget of the input cache")
	lf.add(cmd)
	return cmd
}
