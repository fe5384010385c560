package main

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ledgerstream/ledgerstream/internal/cli"
	"github.com/ledgerstream/ledgerstream/internal/kafka"
)

func newBrokerCmd(g *cli.Globals) *cobra.Command {
	var listen, advertise string
	var partitions int
	var sec kafka.BrokerSecurity
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker until SIGINT/SIGTERM",
		Long: `Runs a Kafka-protocol broker (franz-go's kfake) on a loopback address, persisting its
log under <data-dir>/kafka so that it survives restarts. Any Kafka client can use it.
Group session timeouts down to 1 s are accepted so that tests and local runs recover fast.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bc := kafka.BrokerConfig{
				Listen:     listen,
				Advertise:  advertise,
				DataDir:    g.DataPath("kafka"),
				Partitions: partitions,
				Topics:     []string{g.Topic},
				Logger:     slog.Default(),
			}
			if err := sec.Apply(&bc); err != nil {
				return err
			}
			b, err := kafka.StartBroker(cmd.Context(), bc)
			if err != nil {
				return err
			}
			// The address goes to stdout on its own line so that scripts can read it.
			fmt.Fprintf(cmd.OutOrStdout(), "broker listening on %s\n", b.Addr())
			slog.Info("broker started", "addr", b.Addr(), "topic", g.Topic, "data_dir", g.DataPath("kafka"))
			<-cmd.Context().Done()
			b.Close()
			slog.Info("broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "loopback host:port to listen on (port 0 picks a free one)")
	cmd.Flags().StringVar(&advertise, "advertise", "", "loopback host:port clients are told to connect to, when not --listen (a proxy in front of the broker)")
	cmd.Flags().IntVar(&partitions, "partitions", 3, "partitions of the topic when the broker creates it")
	cli.FlagRange(cmd.Flags(), "partitions", "1", strconv.Itoa(cli.MaxPartitions))
	cli.AddBrokerSecurityFlags(cmd.Flags(), &sec)
	return cmd
}
