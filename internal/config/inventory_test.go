package config_test

import (
	"strings"
	"testing"
)

func TestLoadInventory(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		err  string // "" means valid
	}{
		{"off", nil, ""},
		{"yaml file and token", map[string]string{"VMTRIAGE_INVENTORY_PATH": "/etc/vmtriage/inventory.yaml", "VMTRIAGE_INVENTORY_TOKEN": "0123456789abcdef"}, ""},
		{"csv file", map[string]string{"VMTRIAGE_INVENTORY_PATH": "cmdb.CSV"}, ""},
		{"json file", map[string]string{"VMTRIAGE_INVENTORY_PATH": "inv.json"}, `VMTRIAGE_INVENTORY_PATH: "inv.json" must end in .yaml, .yml or .csv`},
		{"short token", map[string]string{"VMTRIAGE_INVENTORY_TOKEN": "short-secret"}, "VMTRIAGE_INVENTORY_TOKEN: is shorter than 16 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.env)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				if cfg.InventoryPath != tc.env["VMTRIAGE_INVENTORY_PATH"] || cfg.InventoryToken.Reveal() != tc.env["VMTRIAGE_INVENTORY_TOKEN"] {
					t.Errorf("loaded %q, %q", cfg.InventoryPath, cfg.InventoryToken)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("load = %v; want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "short-secret") {
				t.Errorf("the token leaked into the error: %v", err)
			}
		})
	}
}
