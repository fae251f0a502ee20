import { installSchema } from "../bridge/schema-installer.ts";
import { withClient, type Command } from "./command.ts";

export const installCommand: Command = {
  name: "install",
  summary: "install or upgrade the offload schema in the database, then exit",
  help: `pg-offload install

Applies, in order, every migration (sql/NNN_*.sql) the database has not had yet, each in its own
transaction; safe to run again and from several places at once. The bridge does the same when it
starts. Needs a superuser (it creates an extension, an event trigger and a schema).`,
  async run(_args, config) {
    const applied = await withClient(config(), (client) => installSchema(client));
    console.log(applied.length ? `applied migrations ${applied.join(", ")}` : "schema up to date");
    return 0;
  },
};
