"""Preview environments: per-pull-request store names, `status` and `teardown`."""
