
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'hop' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'hop'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'hop' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--push-key', '--push-key', [CompletionResultType]::ParameterName, 'Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop, kept in memory only (config: auth = "instance-connect")')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the instances hop sees and the route it would take to each')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print ssh_config stanzas for every reachable instance; --write installs them')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Bridge stdin/stdout to TARGET''s PORT through the route (for ProxyCommand, scp, rsync)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'List the background connection masters and end them (those matching PATTERN)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hop;connect' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--push-key', '--push-key', [CompletionResultType]::ParameterName, 'Log in with a fresh key pushed by EC2 Instance Connect (SendSSHPublicKey) on every hop, kept in memory only (config: auth = "instance-connect")')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;ls' {
            [CompletionResult]::new('--tag', '--tag', [CompletionResultType]::ParameterName, 'Show only instances with this tag (KEY=VALUE, or KEY for any value); repeatable')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (a stable schema, see README) instead of a table')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;route' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of text')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;config' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The ssh config file to add the Include line to (default: ~/.ssh/config)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--write', '--write', [CompletionResultType]::ParameterName, 'Install the stanzas: write ~/.ssh/hop/config and add one Include line to the ssh config')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;forward' {
            [CompletionResult]::new('-D', '-D ', [CompletionResultType]::ParameterName, 'A SOCKS 5/4a proxy on [BIND:]PORT whose connections leave from the target')
            [CompletionResult]::new('-R', '-R ', [CompletionResultType]::ParameterName, 'A listener on the target, [BIND:]RPORT, whose connections come back to HOST:PORT here')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--push-key', '--push-key', [CompletionResultType]::ParameterName, 'Log in with a fresh key pushed by EC2 Instance Connect on every hop (as `hop --push-key`)')
            [CompletionResult]::new('--native', '--native', [CompletionResultType]::ParameterName, 'Session Manager''s own port forwarding (one session per forward, smux-multiplexed when the agent supports it) instead of SSH: needs no SSH access to the instance')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;proxy' {
            [CompletionResult]::new('--push-key', '--push-key', [CompletionResultType]::ParameterName, 'Push this public key (yours, e.g. ~/.ssh/id_ed25519.pub) with EC2 Instance Connect before bridging, for ssh/scp/rsync through `hop config` stanzas')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;doctor' {
            [CompletionResult]::new('--my-ip', '--my-ip', [CompletionResultType]::ParameterName, 'Your public address (or network), to check that the bastion lets SSH in from it')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of the checklist')
            [CompletionResult]::new('--probe', '--probe', [CompletionResultType]::ParameterName, 'Also try the route for real: TCP to the bastion, SSH to it, then the target''s port 22')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;stop' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;completions' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;man' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile to use (default: $AWS_PROFILE, then the config file, then "default")')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region to search; repeat for several (default: config file, $AWS_REGION, profile)')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('--login', '--login', [CompletionResultType]::ParameterName, 'Remote user on the target (default: tag hop:user, config, then ec2-user)')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Identity (private key) file for the target')
            [CompletionResult]::new('-J', '-J ', [CompletionResultType]::ParameterName, 'Jump through these hosts instead of the VPC''s bastion: [USER@]HOST[:PORT], comma separated, HOST an instance (name, id, IP) or any host (like `ssh -J`)')
            [CompletionResult]::new('--eice', '--eice', [CompletionResultType]::ParameterName, 'Route through an EC2 Instance Connect Endpoint of the target''s VPC (or ENDPOINT, an eice-… id) even when a bastion could be used')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds each step of each hop may take (TCP, SSH handshake, authentication, channel open, Session Manager handshake); a whole connection gets this much per hop')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour on stdout (NO_COLOR is respected with auto)')
            [CompletionResult]::new('--refresh', '--refresh', [CompletionResultType]::ParameterName, 'Ignore the discovery cache and ask EC2 again')
            [CompletionResult]::new('--newest', '--newest', [CompletionResultType]::ParameterName, 'When a name matches several instances, choose the most recently launched')
            [CompletionResult]::new('--accept-new', '--accept-new', [CompletionResultType]::ParameterName, 'Trust and record unknown host keys without asking (changed keys are still refused), like `ssh -o StrictHostKeyChecking=accept-new`')
            [CompletionResult]::new('--ssm', '--ssm', [CompletionResultType]::ParameterName, 'Route through SSM Session Manager even when a bastion could be used')
            [CompletionResult]::new('-A', '-A ', [CompletionResultType]::ParameterName, 'Forward the ssh-agent to the target (never to a bastion), bound to the session so destination-constrained keys keep their limits')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Force a PTY on the target even for a command (like `ssh -t`)')
            [CompletionResult]::new('-T', '-T ', [CompletionResultType]::ParameterName, 'Never request a PTY (like `ssh -T`)')
            [CompletionResult]::new('--no-reuse', '--no-reuse', [CompletionResultType]::ParameterName, 'Connect without a background connection master: neither use one nor leave one behind (config: `reuse = false`)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More output on stderr (-v, -vv)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hop;help' {
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Connect to TARGET (the same as `hop TARGET`, for names that collide with a subcommand)')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the instances hop sees and the route it would take to each')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Explain the route to TARGET and print the equivalent OpenSSH command; connects nowhere')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Print ssh_config stanzas for every reachable instance; --write installs them')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local ports to TARGET, or to hosts behind it, over one SSH connection')
            [CompletionResult]::new('proxy', 'proxy', [CompletionResultType]::ParameterValue, 'Bridge stdin/stdout to TARGET''s PORT through the route (for ProxyCommand, scp, rsync)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Explain why TARGET is unreachable (routes, security groups, NACLs, NAT, SSM) and how to fix it')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'List the background connection masters and end them (those matching PATTERN)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print a man page (roff)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hop;help;connect' {
            break
        }
        'hop;help;ls' {
            break
        }
        'hop;help;route' {
            break
        }
        'hop;help;config' {
            break
        }
        'hop;help;forward' {
            break
        }
        'hop;help;proxy' {
            break
        }
        'hop;help;doctor' {
            break
        }
        'hop;help;stop' {
            break
        }
        'hop;help;completions' {
            break
        }
        'hop;help;man' {
            break
        }
        'hop;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
