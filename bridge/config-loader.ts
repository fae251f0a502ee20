/**
 * The bridge's configuration as the CLI loads it: settings from the file and the environment
 * (bridge/settings.ts), checked and turned into a BridgeConfig (bridge/config.ts), and shown back
 * with secrets masked (`pg-offload config`).
 */
import { stringify as toYaml } from "yaml";
import { configFromEnv, type BridgeConfig } from "./config.ts";
import { ConfigError, fileKey, readSettings, SETTINGS, type Settings } from "./settings.ts";

export interface LoadedConfig {
  config: BridgeConfig;
  settings: Settings;
}

/** Throws ConfigError naming the bad setting as the user wrote it, and where. */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  file: string | undefined = env.PGOFFLOAD_CONFIG || undefined,
): LoadedConfig {
  const settings = readSettings(env, file);
  // The libraries' own conventions, below the PGOFFLOAD_ names.
  const merged = { DATABASE_URL: env.DATABASE_URL, AWS_REGION: env.AWS_REGION, ...settings.values };
  try {
    return { config: configFromEnv(merged), settings };
  } catch (error) {
    if (error instanceof ConfigError && settings.sources.get(error.key) === "file") {
      throw new ConfigError(`${fileKey(error.key)} (in ${settings.file})`, error.problem);
    }
    throw error;
  }
}

const MASK = "********";

/** The effective configuration as YAML, secrets masked, then where each given setting came from. */
export function describeConfig({ config, settings }: LoadedConfig): string {
  const shown = {
    ...config,
    databaseUrl: maskUrlPassword(config.databaseUrl),
    encryptionKeys: {
      ...config.encryptionKeys,
      current: config.encryptionKeys.current && {
        ...config.encryptionKeys.current,
        ...(config.encryptionKeys.current.text ? { text: MASK } : {}),
      },
    },
  };
  const given = [...settings.sources].map(([name, source]) => {
    const value = SETTINGS.get(name)?.secret ? MASK : settings.values[name];
    const where = source === "file" ? `${settings.file} (${fileKey(name)})` : "environment";
    return `#   ${name} = ${value}   from ${where}`;
  });
  return [
    `# Effective configuration: defaults, then ${settings.file ?? "no file"}, then the environment.`,
    toYaml(shown).trimEnd(),
    given.length ? "# Settings given:" : "# No settings given: all defaults.",
    ...given,
  ].join("\n");
}

function maskUrlPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = MASK;
    return parsed.toString();
  } catch {
    return MASK; // not a URL we can take apart: may hold anything
  }
}
