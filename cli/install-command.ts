import { installSchema } from "../bridge/schema-installer.ts";
import { withClient, type Command } from "./command.ts";

export const installCommand: Command = {
  name: "install",
  summary: "install or upgrade the offload schema in the database, then exit",
  help: `pg-offload install

Applies the migrations the database has not had (sql/migrations/, each once, in order), then the
definition of every function, view, trigger and policy (sql/functions/), all in one transaction
under an advisory lock: safe to run again and from several places at once, and an upgrade that
fails changes nothing. It applies the definitions even when the database already holds this
release's (a bridge starting skips them then), so it also repairs a function changed by hand. Refuses a database a newer pg-offload installed. The bridge does the same
when it starts. As a superuser it creates file_fdw and event triggers too; as another role
(the managed profile, README "On managed PostgreSQL") it installs without them.`,
  async run(_args, config) {
    const applied = await withClient(config(), (client) =>
      installSchema(client, { functions: "always" }),
    );
    console.log(applied.length ? `applied migrations ${applied.join(", ")}` : "schema up to date");
    return 0;
  },
};
