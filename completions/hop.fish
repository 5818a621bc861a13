# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hop_global_optspecs
    string join \n profile= region= l/login= i/identity= refresh newest accept-new J= ssm eice= A t T connect-timeout= no-reuse v/verbose color= push-key h/help V/version
end

function __fish_hop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hop_using_subcommand
    set -l cmd (__fish_hop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hop -n "__fish_hop_needs_command" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_needs_command" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_needs_command" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_needs_command" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_needs_command" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_needs_command" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_needs_command" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_needs_command" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_needs_command" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_needs_command" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_needs_command" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_needs_command" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_needs_command" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_needs_command" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_needs_command" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_needs_command" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_needs_command" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_needs_command" -l push-key -d 'Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop, kept in memory only (config: auth = "instance-connect")'
complete -c hop -n "__fish_hop_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hop -n "__fish_hop_needs_command" -s V -l version -d 'Print version'
complete -c hop -n "__fish_hop_needs_command" -a "connect" -d 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)'
complete -c hop -n "__fish_hop_needs_command" -a "ls" -d 'List the instances hop sees and the route it would take to each'
complete -c hop -n "__fish_hop_needs_command" -a "route" -d 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere'
complete -c hop -n "__fish_hop_needs_command" -a "config" -d 'Print ssh_config stanzas for every reachable instance; --write installs them'
complete -c hop -n "__fish_hop_needs_command" -a "forward" -d 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection'
complete -c hop -n "__fish_hop_needs_command" -a "proxy" -d 'Bridge stdin/stdout to TARGET\'s PORT through the route (for ProxyCommand, scp, rsync)'
complete -c hop -n "__fish_hop_needs_command" -a "doctor" -d 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it'
complete -c hop -n "__fish_hop_needs_command" -a "stop" -d 'List the background connection masters and end them (those matching PATTERN)'
complete -c hop -n "__fish_hop_needs_command" -a "completions" -d 'Print a shell completion script'
complete -c hop -n "__fish_hop_needs_command" -a "man" -d 'Print a man page (roff)'
complete -c hop -n "__fish_hop_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hop -n "__fish_hop_using_subcommand connect" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand connect" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand connect" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand connect" -l push-key -d 'Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop, kept in memory only (config: auth = "instance-connect")'
complete -c hop -n "__fish_hop_using_subcommand connect" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand connect" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand connect" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand connect" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand connect" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand connect" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand connect" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand connect" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand connect" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand connect" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand ls" -l tag -d 'Show only instances with this tag (KEY=VALUE, or KEY for any value); repeatable' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand ls" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand ls" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand ls" -l json -d 'Print JSON (a stable schema, see README) instead of a table'
complete -c hop -n "__fish_hop_using_subcommand ls" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand ls" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand ls" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand ls" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand ls" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand ls" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand ls" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand ls" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand ls" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand ls" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand route" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand route" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand route" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand route" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand route" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand route" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand route" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand route" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand route" -l json -d 'Print JSON instead of text'
complete -c hop -n "__fish_hop_using_subcommand route" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand route" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand route" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand route" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand route" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand route" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand route" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand route" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand route" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand route" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand config" -l file -d 'The ssh config file to add the Include line to (default: ~/.ssh/config)' -r -F
complete -c hop -n "__fish_hop_using_subcommand config" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand config" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand config" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand config" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand config" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand config" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand config" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand config" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand config" -l write -d 'Install the stanzas: write ~/.ssh/hop/config and add one Include line to the ssh config'
complete -c hop -n "__fish_hop_using_subcommand config" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand config" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand config" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand config" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand config" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand config" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand config" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand config" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand config" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand config" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand forward" -s D -d 'A SOCKS 5/4a proxy on [BIND:]PORT whose connections leave from the target' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -s R -d 'A listener on the target, [BIND:]RPORT, whose connections come back to HOST:PORT here' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand forward" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand forward" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand forward" -l push-key -d 'Log in with a fresh key pushed by EC2 Instance Connect on every hop (as `hop --push-key`)'
complete -c hop -n "__fish_hop_using_subcommand forward" -l native -d 'Session Manager\'s own port forwarding (one session per forward, smux-multiplexed when the agent supports it) instead of SSH: needs no SSH access to the instance'
complete -c hop -n "__fish_hop_using_subcommand forward" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand forward" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand forward" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand forward" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand forward" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand forward" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand forward" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand forward" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand forward" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand forward" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand proxy" -l push-key -d 'Push this public key (yours, e.g. ~/.ssh/id_ed25519.pub) with EC2 Instance Connect before bridging, for ssh/scp/rsync through `hop config` stanzas' -r -F
complete -c hop -n "__fish_hop_using_subcommand proxy" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand proxy" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand proxy" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand proxy" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand proxy" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand proxy" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand proxy" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand proxy" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand proxy" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand proxy" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand proxy" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand proxy" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand proxy" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l my-ip -d 'Your public address (or network), to check that the bastion lets SSH in from it' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand doctor" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand doctor" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand doctor" -l json -d 'Print JSON instead of the checklist'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l probe -d 'Also try the route for real: TCP to the bastion, SSH to it, then the target\'s port 22'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand doctor" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand doctor" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand doctor" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand doctor" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand doctor" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand stop" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand stop" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand stop" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand stop" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand stop" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand stop" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand stop" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand stop" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand stop" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand stop" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand stop" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand stop" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand stop" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand completions" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand completions" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand completions" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand completions" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand completions" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand completions" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand completions" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand completions" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand completions" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand completions" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand completions" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand completions" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand man" -l profile -d 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")' -r
complete -c hop -n "__fish_hop_using_subcommand man" -l region -d 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)' -r
complete -c hop -n "__fish_hop_using_subcommand man" -s l -l login -d 'Remote user on the target (default: tag hop:user, config, then ec2-user)' -r
complete -c hop -n "__fish_hop_using_subcommand man" -s i -l identity -d 'Identity (private key) file for the target' -r -F
complete -c hop -n "__fish_hop_using_subcommand man" -s J -d 'Jump through these hosts instead of the VPC\'s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)' -r
complete -c hop -n "__fish_hop_using_subcommand man" -l eice -d 'Route through an EC2 Instance Connect Endpoint of the target\'s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used' -r
complete -c hop -n "__fish_hop_using_subcommand man" -l connect-timeout -d 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop' -r
complete -c hop -n "__fish_hop_using_subcommand man" -l color -d 'When to use colour on stdout (NO_COLOR is respected with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c hop -n "__fish_hop_using_subcommand man" -l refresh -d 'Ignore the discovery cache and ask EC2 again'
complete -c hop -n "__fish_hop_using_subcommand man" -l newest -d 'When a name matches several instances, choose the most recently launched'
complete -c hop -n "__fish_hop_using_subcommand man" -l accept-new -d 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
complete -c hop -n "__fish_hop_using_subcommand man" -l ssm -d 'Route through SSM Session Manager even when a bastion could be used'
complete -c hop -n "__fish_hop_using_subcommand man" -s A -d 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
complete -c hop -n "__fish_hop_using_subcommand man" -s t -d 'Force a PTY on the target even for a command (like `ssh -t`)'
complete -c hop -n "__fish_hop_using_subcommand man" -s T -d 'Never request a PTY (like `ssh -T`)'
complete -c hop -n "__fish_hop_using_subcommand man" -l no-reuse -d 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
complete -c hop -n "__fish_hop_using_subcommand man" -s v -l verbose -d 'More output on stderr (-v, -vv)'
complete -c hop -n "__fish_hop_using_subcommand man" -s h -l help -d 'Print help'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "connect" -d 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "ls" -d 'List the instances hop sees and the route it would take to each'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "route" -d 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "config" -d 'Print ssh_config stanzas for every reachable instance; --write installs them'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "forward" -d 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "proxy" -d 'Bridge stdin/stdout to TARGET\'s PORT through the route (for ProxyCommand, scp, rsync)'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "doctor" -d 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "stop" -d 'List the background connection masters and end them (those matching PATTERN)'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "man" -d 'Print a man page (roff)'
complete -c hop -n "__fish_hop_using_subcommand help; and not __fish_seen_subcommand_from connect ls route config forward proxy doctor stop completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
