import type * as command from "@pulumi/command";

/** An SSH connection of the command provider (host, port, user, key, pinned host key, bastion). */
export type Connection = command.types.input.remote.ConnectionArgs;
