#!/bin/bash
# The lab sshd's AuthorizedKeysCommand: the decision Amazon's ec2-instance-connect package makes
# (eic_parse_authorized_keys, spec ec2-instance-connect.md §B.2 and §D.4), without IMDS and
# without the signer certificate (the lab's blocks are unsigned; signature lines are skipped).
#
#   eic-keys HOST USER [FINGERPRINT]        (sshd: AuthorizedKeysCommand …/eic-keys HOST %u %f)
#
# netns_lab.py copies this file to /run/hop-netns-TAG/eic-keys (root, 0755: sshd refuses a
# command under a directory that is not root-owned or is group/world-writable, such as /tmp)
# and runs it as `nobody` (AuthorizedKeysCommandUser). Next to it:
#   instance/HOST          the instance id(s) this host's sshd stands for, one per line (written
#                          once moto has seeded; absent = this host accepts no pushed key)
#   eic/ID/USER            blocks moto_lab's SendSSHPublicKey appended (bed12.md):
#                            #Timestamp=<expiry, epoch s>
#                            #Instance=<instance id>
#                            #Caller=…  #Request=…   (any other #… line is ignored)
#                            <key line>
#                            [signature lines]
#                            <blank line>
#   akc.log                one line per call (owned by nobody): time, host, user, fingerprint,
#                          printed count and why the other blocks were skipped
#
# A block's key line is printed (authorized) when #Instance is the id whose file it is in (one of
# this host's ids), #Timestamp > now (the lab's clock), the key line starts with "ssh" (so ECDSA
# keys never work, as on EC2) and, when sshd gave a fingerprint, its SHA256 fingerprint
# (ssh-keygen -l) equals it. Exit 0 when something was printed, else 255, like the original.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
LC_ALL=C
export LC_ALL

dir=${0%/*}
host=${1-}
user=${2-}
want=${3-}
printf -v now '%(%s)T' -1

printed=0
blocks=0
expired=0
other_instance=0
not_ssh=0
other_key=0

log() {
    printf '%s host=%s user=%s fingerprint=%s printed=%d blocks=%d expired=%d other_instance=%d not_ssh=%d other_key=%d\n' \
        "$now" "$host" "$user" "${want:--}" "$printed" "$blocks" "$expired" "$other_instance" "$not_ssh" \
        "$other_key" >>"$dir/akc.log" 2>/dev/null
}

finish() {
    log
    ((printed > 0)) && exit 0
    exit 255
}

# Names go into paths: nothing that could leave the store.
[[ $host =~ ^[a-z_]+$ ]] || finish
[[ $user =~ ^[A-Za-z_][A-Za-z0-9@._-]{0,31}\$?$ ]] || finish
[[ -r $dir/instance/$host ]] || finish

# One block is done: decide about it.
decide() {
    [[ -n $key ]] || return 0
    blocks=$((blocks + 1))
    if [[ $instance != "$id" ]]; then
        other_instance=$((other_instance + 1))
    elif ! [[ $timestamp =~ ^[0-9]{1,12}$ ]] || ((10#$timestamp <= now)); then
        expired=$((expired + 1))
    elif [[ $key != ssh* ]]; then
        not_ssh=$((not_ssh + 1))
    else
        if [[ -n $want ]]; then
            local _bits fp _rest
            read -r _bits fp _rest < <(printf '%s\n' "$key" | ssh-keygen -lf - 2>/dev/null)
            if [[ ${fp-} != "$want" ]]; then
                other_key=$((other_key + 1))
                return 0
            fi
        fi
        printf '%s\n' "$key"
        printed=$((printed + 1))
    fi
}

while IFS= read -r id || [[ -n $id ]]; do
    [[ $id =~ ^i-[0-9a-f]{8,32}$ ]] || continue
    file=$dir/eic/$id/$user
    [[ -r $file ]] || continue
    instance='' timestamp='' key=''
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        if [[ -z $line ]]; then
            decide
            instance='' timestamp='' key=''
        elif [[ -n $key ]]; then
            : # a signature line
        elif [[ $line == '#Instance='* ]]; then
            instance=${line#'#Instance='}
        elif [[ $line == '#Timestamp='* ]]; then
            timestamp=${line#'#Timestamp='}
        elif [[ $line == '#'* ]]; then
            : # #Caller, #Request, anything else
        else
            key=$line
        fi
    done <"$file"
    decide
done <"$dir/instance/$host"
finish
