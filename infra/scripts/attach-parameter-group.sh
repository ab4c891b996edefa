#!/usr/bin/env bash
# Attaches drugsync's cluster parameter group to the existing Aurora cluster, without ever replacing a group
# that holds someone else's settings (run by the terraform_data resource of infra/aurora.ts when
# attach_aurora_parameter_group = true; needs the AWS CLI).
#
# A cluster has exactly one cluster parameter group: attaching ours replaces the current one. So:
#   - current group is a default group (default.*) → attach ours (nothing of anyone's is lost);
#   - current group is already ours                 → nothing to do;
#   - any other group                               → refuse (exit 3) and print the commands that add our
#     parameters to that group, or to a copy of it, instead.
#
# Environment: REGION, CLUSTER (cluster identifier), GROUP (our group's name),
#              PARAMETERS (space-separated name=value pairs of our group, for the printed commands).
set -euo pipefail

: "${REGION:?REGION is not set}" "${CLUSTER:?CLUSTER is not set}" "${GROUP:?GROUP is not set}"
PARAMETERS="${PARAMETERS:-}"

if ! current=$(aws rds describe-db-clusters --region "$REGION" --db-cluster-identifier "$CLUSTER" \
  --query 'DBClusters[0].DBClusterParameterGroup' --output text); then
  echo "drugsync: cannot read the cluster parameter group of Aurora cluster \"$CLUSTER\" in $REGION" \
    "(aws rds describe-db-clusters failed, see above); nothing was changed." >&2
  echo "Check aurora_cluster_identifier, the region and the credentials of the machine that applies." >&2
  exit 2
fi
current="${current//[$'\r\n']/}"

if [[ -z "$current" || "$current" == "None" ]]; then
  echo "drugsync: Aurora cluster \"$CLUSTER\" reports no cluster parameter group; nothing was changed." >&2
  exit 2
fi

if [[ "$current" == "$GROUP" ]]; then
  echo "drugsync: Aurora cluster \"$CLUSTER\" already uses $GROUP; nothing to do."
  exit 0
fi

if [[ "$current" == default.* ]]; then
  echo "drugsync: Aurora cluster \"$CLUSTER\" uses the default group $current; attaching $GROUP."
  aws rds modify-db-cluster --region "$REGION" --db-cluster-identifier "$CLUSTER" \
    --db-cluster-parameter-group-name "$GROUP" --apply-immediately >/dev/null
  echo "drugsync: attached $GROUP to \"$CLUSTER\". Reboot the writer in a maintenance window (static parameters)."
  exit 0
fi

# Someone else's group: attaching ours would silently drop every setting it holds.
params=""
for pair in $PARAMETERS; do
  params+=" \"ParameterName=${pair%%=*},ParameterValue=${pair#*=},ApplyMethod=pending-reboot\""
done
copy="${current}-drugsync"
{
  echo "drugsync: refusing to attach $GROUP to Aurora cluster \"$CLUSTER\": the cluster uses the cluster"
  echo "parameter group \"$current\", and attaching $GROUP would replace it, dropping every setting it holds."
  echo "Nothing was changed. Do one of these instead, then reboot the writer in a maintenance window:"
  echo
  echo "  1. add drugsync's settings to the group the cluster already uses:"
  echo "     aws rds modify-db-cluster-parameter-group --region $REGION \\"
  echo "       --db-cluster-parameter-group-name $current \\"
  echo "       --parameters$params"
  echo
  echo "  2. or copy that group, add drugsync's settings to the copy, and attach the copy:"
  echo "     aws rds copy-db-cluster-parameter-group --region $REGION \\"
  echo "       --source-db-cluster-parameter-group-identifier $current \\"
  echo "       --target-db-cluster-parameter-group-identifier $copy \\"
  echo "       --target-db-cluster-parameter-group-description \"$current with drugsync binlog settings\""
  echo "     aws rds modify-db-cluster-parameter-group --region $REGION \\"
  echo "       --db-cluster-parameter-group-name $copy \\"
  echo "       --parameters$params"
  echo "     aws rds modify-db-cluster --region $REGION --db-cluster-identifier $CLUSTER \\"
  echo "       --db-cluster-parameter-group-name $copy --apply-immediately"
  echo
  echo "Then set attach_aurora_parameter_group = false and apply again (docs/deploy.md, \"Aurora\")."
} >&2
exit 3
