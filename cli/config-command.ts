import { describeConfig } from "../bridge/config-loader.ts";
import type { Command } from "./command.ts";

export const configCommand: Command = {
  name: "config",
  summary: "print the effective configuration, secrets masked, and where each setting came from",
  help: `pg-offload config

Loads the configuration as the bridge would (defaults, then the file given by --config or
PGOFFLOAD_CONFIG, then PGOFFLOAD_* environment variables), checks it, and prints it as YAML with
passwords and keys masked. A bad setting is reported as the bridge would report it.`,
  async run(_args, config) {
    console.log(describeConfig(config()));
    return 0;
  },
};
