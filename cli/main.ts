/**
 * `pg-offload`: one command for operators. Global options come before the command; every command
 * has its own --help.
 */
import { ConfigError } from "../bridge/settings.ts";
import { describeError } from "../storage/describe-error.ts";
import { loadConfig, type LoadedConfig } from "../bridge/config-loader.ts";
import { benchCommand } from "./bench-command.ts";
import { bridgeCommand } from "./bridge-command.ts";
import { UsageError, type Command } from "./command.ts";
import { exitWhenWritten } from "./exit.ts";
import { configCommand } from "./config-command.ts";
import { gcCommand } from "./gc-command.ts";
import { installCommand } from "./install-command.ts";
import { loadBackCommand } from "./load-back-command.ts";
import { runCommand } from "./run-command.ts";
import { statusCommand } from "./status-command.ts";
import { verifyCommand } from "./verify-command.ts";

const COMMANDS: Command[] = [
  installCommand,
  bridgeCommand,
  statusCommand,
  runCommand,
  verifyCommand,
  gcCommand,
  loadBackCommand,
  configCommand,
  benchCommand,
];

const USAGE = `pg-offload [--config FILE] <command> [arguments]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join("\n")}

Options:
  --config FILE  settings file (YAML: \`setting: value\`, e.g. cache_bytes: 1073741824);
                 PGOFFLOAD_CONFIG names it too. Precedence: defaults < file < environment
  -h, --help     this help; \`pg-offload <command> --help\` for a command's

Settings: README.md, Configuration reference.`;

async function main(argv: string[]): Promise<number> {
  let file: string | undefined;
  let rest = argv;
  if (rest[0] === "--config") {
    file = rest[1];
    if (!file) return usage("--config needs a file");
    rest = rest.slice(2);
  } else if (rest[0]?.startsWith("--config=")) {
    file = rest[0].slice("--config=".length);
    rest = rest.slice(1);
  }
  const [name, ...args] = rest;
  if (!name || name === "-h" || name === "--help") {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) return usage(`unknown command "${name}"`);
  if (args.includes("--help") || args.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  let loaded: LoadedConfig | undefined;
  const config = () => (loaded ??= loadConfig(process.env, file));
  try {
    return await command.run(args, config);
  } catch (error) {
    if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      console.error(`pg-offload ${name}: ${(error as Error).message}\n\n${command.help}`);
      return 2;
    }
    throw error;
  }
}

function usage(problem: string): number {
  console.error(`pg-offload: ${problem}\n\n${USAGE}`);
  return 2;
}

// A reader that stops early (`pg-offload gc --dry-run | head -1`) ends the command quietly, as it
// ends any writer on a pipe: what it printed was wanted only in part, nothing failed.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  console.error(`pg-offload: cannot write the output: ${describeError(error)}`);
  process.exit(1);
});

main(process.argv.slice(2)).then(
  (code) => exitWhenWritten(code),
  (error: unknown) => {
    // Never a bare exit code: an error without a message is still named (describeError).
    console.error(
      error instanceof ConfigError ? error.message : `pg-offload: ${describeError(error)}`,
    );
    return exitWhenWritten(1);
  },
);
