// Package inventory keeps vmtriage's small inventory of relations — VM to
// service, service to owning team, team to Slack channel, user group, Jira
// component and assignee — and computes the impact of a fault: which
// services lose how many instances, where they lose their last one, and
// which teams to tell.
//
// Relations come from several sources, each kept in its own layer in Redis
// (so replicas share them) and merged field by field with a fixed
// precedence, highest first:
//
//	api               POST /v1/inventory: what another system (a CMDB sync,
//	                  provisioning) states now, deliberately, about named
//	                  entries; newest and most specific, so it wins.
//	file              VMTRIAGE_INVENTORY_PATH: the operators' reviewed
//	                  baseline (usually kept in Git); it changes slowly, by
//	                  review, so a push may correct it in between.
//	azure-tags        tags on Azure resources: set by whoever created the VM,
//	                  rarely reviewed, often stale.
//	libvirt-metadata  domain metadata written when a domain was defined: the
//	                  least curated of all.
//
// A relation a higher layer does not state falls through to the next one,
// so a file can name a team's channel while a push names its assignee.
// Every change of a relation in any layer is recorded with its source, its
// time (the injected clock) and who made it.
//
// Placement (VM → host → site, and whether a VM is down) is not part of the
// inventory: it comes from the state store, which the collectors keep.
package inventory
