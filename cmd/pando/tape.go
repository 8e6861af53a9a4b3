package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/plugins/storage/tape/emulator"
)

func newTapeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tape", Short: "Tape tools"}
	cmd.AddCommand(newTapeServeCmd())
	return cmd
}

func newTapeServeCmd() *cobra.Command {
	var (
		cfg        emulator.Config
		addr, rate string
		buffer     string
		lf         logFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a tape system emulator behind the WLCG Tape REST API, for tests and demos",
		Long: `Serves the WLCG Tape REST API (/api/v1/stage, release, archiveinfo) and a data
door (/data/PATH) over DIR/tape (the cartridges: a file's first directory is
its cartridge) with a disk buffer in DIR/disk. Drives mount cartridges, seek
and read at --rate; files are readable once staged to the buffer.
Put files on tape by writing them under DIR/tape, or with PUT /data/PATH.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.logger()
			if err != nil {
				return err
			}
			if cfg.Rate, err = task.ParseSize(rate); err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
			if cfg.BufferBytes, err = task.ParseSize(buffer); err != nil {
				return fmt.Errorf("--buffer: %w", err)
			}
			cfg.Logger = log
			return emulator.Serve(cmd.Context(), addr, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:7080", "HTTP address")
	f.StringVar(&cfg.Dir, "dir", "pando-tape", "directory for the cartridges (DIR/tape) and the disk buffer (DIR/disk)")
	f.IntVar(&cfg.Drives, "drives", 2, "tape drives")
	f.DurationVar(&cfg.Mount, "mount", 0, "time to mount a cartridge (default 2s)")
	f.DurationVar(&cfg.Seek, "seek", 0, "time to position before each file (default 1s)")
	f.StringVar(&rate, "rate", "300MB", "read rate of a drive, bytes per second")
	f.StringVar(&buffer, "buffer", "10GiB", "size of the disk buffer")
	f.StringVar(&cfg.Order, "order", emulator.OrderTape, "recall order: tape (files of a mounted cartridge first) or fifo (oldest first)")
	f.StringVar(&cfg.Secret, "secret", os.Getenv("PANDO_TAPE_SECRET"), "require this secret as a bearer token or URL signing key (the endpoint's secret_key; env PANDO_TAPE_SECRET)")
	lf.add(cmd)
	return cmd
}
