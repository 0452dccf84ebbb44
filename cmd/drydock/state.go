package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
)

// stateFlags locate a server's state for the commands that read or change
// it directly (users, tokens, the audit log, migrations): the server's
// config file, whose database section says where state lives, and its
// data directory.
type stateFlags struct {
	configFile string
	data       string
}

func (f *stateFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.configFile, "config", "c", "", "the server's YAML config file; its database section says where state lives [$DRYDOCK_CONFIG]")
	pf.StringVar(&f.data, "data", "", "data directory (default: the config's, else "+config.DefaultDataDir()+") [$DRYDOCK_DATA]")
}

// load reads the config as "drydock serve" would (file, DRYDOCK_*
// variables), with --data over it.
func (f *stateFlags) load() (config.Config, error) {
	file := f.configFile
	if file == "" {
		file = os.Getenv("DRYDOCK_CONFIG")
	}
	cfg, err := config.Load(file, os.Environ())
	if err != nil {
		return config.Config{}, err
	}
	if f.data != "" {
		cfg.Data = f.data
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

// opener returns the database opener of the server's state.
func (f *stateFlags) opener() (*database.Opener, config.Config, error) {
	cfg, err := f.load()
	if err != nil {
		return nil, config.Config{}, err
	}
	o, err := database.NewOpener(cfg.Database, cfg.Data)
	if err != nil {
		return nil, config.Config{}, err
	}
	return o, cfg, nil
}

// existingOpener is opener for state that must already exist: on SQLite,
// the component's file must be there (a server ran with this data
// directory), so that a mistyped --data is not taken for an empty install.
func (f *stateFlags) existingOpener(component, what, createdBy string) (*database.Opener, error) {
	o, cfg, err := f.opener()
	if err != nil {
		return nil, err
	}
	if o.Driver() == database.SQLite {
		p := database.SQLitePath(cfg.Data, component)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no %s at %s: it is created by %s (pass the server's --data or --config)", what, p, createdBy)
		}
	}
	return o, nil
}
