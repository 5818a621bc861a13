
use builtin;
use str;

set edit:completion:arg-completer[hop] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'hop'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'hop'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand connect 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)'
            cand ls 'List the instances hop sees and the route it would take to each'
            cand route 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere'
            cand config 'Print ssh_config stanzas for every reachable instance; --write installs them'
            cand forward 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection'
            cand proxy 'Bridge stdin/stdout to TARGET''s PORT through the route (for ProxyCommand, scp, rsync)'
            cand doctor 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it'
            cand stop 'List the background connection masters and end them (those matching PATTERN)'
            cand completions 'Print a shell completion script'
            cand man 'Print a man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hop;connect'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;ls'= {
            cand --tag 'Show only instances with this tag (KEY=VALUE, or KEY for any value); repeatable'
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --json 'Print JSON (a stable schema, see README) instead of a table'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;route'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --json 'Print JSON instead of text'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;config'= {
            cand --file 'The ssh config file to add the Include line to (default: ~/.ssh/config)'
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --write 'Install the stanzas: write ~/.ssh/hop/config and add one Include line to the ssh config'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;forward'= {
            cand -D 'A SOCKS 5/4a proxy on [BIND:]PORT whose connections leave from the target'
            cand -R 'A listener on the target, [BIND:]RPORT, whose connections come back to HOST:PORT here'
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --native 'Session Manager''s own port forwarding (one session per forward, smux-multiplexed when the agent supports it) instead of SSH: needs no SSH access to the instance'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;proxy'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;doctor'= {
            cand --my-ip 'Your public address (or network), to check that the bastion lets SSH in from it'
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --json 'Print JSON instead of the checklist'
            cand --probe 'Also try the route for real: TCP to the bastion, SSH to it, then the target''s port 22'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;stop'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;completions'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;man'= {
            cand --profile 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")'
            cand --region 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)'
            cand -l 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand --login 'Remote user on the target (default: tag hop:user, config, then ec2-user)'
            cand -i 'Identity (private key) file for the target'
            cand --identity 'Identity (private key) file for the target'
            cand -J 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)'
            cand --connect-timeout 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop'
            cand --color 'When to use colour on stdout (NO_COLOR is respected with auto)'
            cand --refresh 'Ignore the discovery cache and ask EC2 again'
            cand --newest 'When a name matches several instances, choose the most recently launched'
            cand --accept-new 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`'
            cand --ssm 'Route through SSM Session Manager even when a bastion could be used'
            cand -A 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits'
            cand -t 'Force a PTY on the target even for a command (like `ssh -t`)'
            cand -T 'Never request a PTY (like `ssh -T`)'
            cand --no-reuse 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)'
            cand -v 'More output on stderr (-v, -vv)'
            cand --verbose 'More output on stderr (-v, -vv)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hop;help'= {
            cand connect 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)'
            cand ls 'List the instances hop sees and the route it would take to each'
            cand route 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere'
            cand config 'Print ssh_config stanzas for every reachable instance; --write installs them'
            cand forward 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection'
            cand proxy 'Bridge stdin/stdout to TARGET''s PORT through the route (for ProxyCommand, scp, rsync)'
            cand doctor 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it'
            cand stop 'List the background connection masters and end them (those matching PATTERN)'
            cand completions 'Print a shell completion script'
            cand man 'Print a man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hop;help;connect'= {
        }
        &'hop;help;ls'= {
        }
        &'hop;help;route'= {
        }
        &'hop;help;config'= {
        }
        &'hop;help;forward'= {
        }
        &'hop;help;proxy'= {
        }
        &'hop;help;doctor'= {
        }
        &'hop;help;stop'= {
        }
        &'hop;help;completions'= {
        }
        &'hop;help;man'= {
        }
        &'hop;help;help'= {
        }
    ]
    $completions[$command]
}
