import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

// Enforcement levels per environment come from policies/config/<env>.json (--policy-pack-config).
new PolicyPack("k3s-platform", { policies, enforcementLevel: "mandatory" });
